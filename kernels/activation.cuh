// The activations of the dense layers (kernels/mlp.cu) and of the token path's in-block layers
// (kernels/audio.cu); CPU twin: src/cpu/mlp.rs (Act). The derivative is read from the output y (y > 0
// exactly where the pre-activation is > 0), so pre-activations need not be stored.
#pragma once

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LEAKY 2
#define LEAKY_SLOPE 0.02f

__device__ __forceinline__ float act_apply(float v, int act) {
    if (act == ACT_RELU) return v < 0.0f ? 0.0f : v;
    if (act == ACT_LEAKY) return v < 0.0f ? v * LEAKY_SLOPE : v;
    return v;
}

// dL/d(pre-activation) from y and dL/dy. An inactive ReLU unit selects 0 whatever d_y is (NaN included),
// like PyTorch's threshold_backward.
__device__ __forceinline__ float act_vjp(float y, float d_y, int act) {
    if (act == ACT_RELU) return y > 0.0f ? d_y : 0.0f;
    if (act == ACT_LEAKY) return y > 0.0f ? d_y : d_y * LEAKY_SLOPE;
    return d_y;
}
