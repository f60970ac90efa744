//! Learning rates of the Adam parameter groups (SPEC §7). Positions, the triplane and the MLPs decay
//! exponentially (log-linear interpolation, as 3D Gaussian Splatting's `get_expon_lr_func`) over
//! DECAY_STEPS and are scaled by the camera extent; the other groups are constant.

/// Steps over which the decaying groups go from their initial to their final rate.
pub const DECAY_STEPS: u32 = 20_000;
/// Adam's epsilon for every group.
pub const ADAM_EPS: f32 = 1e-15;
pub const ADAM_BETA1: f32 = 0.9;
pub const ADAM_BETA2: f32 = 0.999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Means,
    Triplane,
    Mlp,
    ShDc,
    ShRest,
    Opacity,
    Scale,
    Rotation,
}

impl Group {
    pub const ALL: [Group; 8] =
        [Group::Means, Group::Triplane, Group::Mlp, Group::ShDc, Group::ShRest, Group::Opacity, Group::Scale, Group::Rotation];

    /// The group's learning rate at `step` (0-based) for a scene whose cameras span `extent`.
    pub fn lr(self, step: u32, extent: f32) -> f32 {
        let decay = |from: f64, to: f64| {
            let p = (step as f64 / DECAY_STEPS as f64).clamp(0.0, 1.0);
            ((1.0 - p) * from.ln() + p * to.ln()).exp() * extent as f64
        };
        (match self {
            Group::Means => decay(1.6e-4, 1.6e-6),
            Group::Triplane => decay(1.6e-3, 1.6e-4),
            Group::Mlp => decay(1e-4, 1e-5),
            Group::ShDc => 2.5e-3,
            Group::ShRest => 1.25e-4,
            Group::Opacity => 0.05,
            Group::Scale => 5e-3,
            Group::Rotation => 1e-3,
        }) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decaying_groups_go_from_initial_to_final_log_linearly() {
        let close = |a: f32, b: f64| ((a as f64 - b) / b).abs() < 1e-6;
        assert!(close(Group::Means.lr(0, 1.0), 1.6e-4));
        assert!(close(Group::Means.lr(DECAY_STEPS, 1.0), 1.6e-6));
        assert!(close(Group::Means.lr(DECAY_STEPS / 2, 1.0), 1.6e-5)); // geometric mean
        assert!(close(Group::Means.lr(10 * DECAY_STEPS, 1.0), 1.6e-6));
        assert!(close(Group::Triplane.lr(0, 2.0), 3.2e-3));
        assert!(close(Group::Mlp.lr(DECAY_STEPS, 3.0), 3e-5));
        assert!(close(Group::Opacity.lr(12_345, 7.0), 0.05));
    }
}
