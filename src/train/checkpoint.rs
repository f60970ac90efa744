//! Checkpoints in the safetensors format: an 8-byte little-endian header length, a JSON header naming each
//! tensor's dtype, shape and byte range, then the raw little-endian tensor bytes. Python's `safetensors`
//! reads them with no code of ours (tests/fixtures holds a file Python wrote, which this reader must read).
//!
//! Writes go to a temporary file that is renamed into place, so a crash never leaves a half-written
//! checkpoint under the real name. Reading validates every offset and size against the file and names the
//! file and tensor in every error; `Checkpoint::f32` also checks the shape the caller expects, so a
//! checkpoint of another architecture is a clear error rather than a wrong load.

use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// A tensor's elements.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl TensorData {
    fn dtype(&self) -> &'static str {
        match self {
            TensorData::F32(_) => "F32",
            TensorData::I64(_) => "I64",
        }
    }
    fn byte_len(&self) -> usize {
        match self {
            TensorData::F32(v) => 4 * v.len(),
            TensorData::I64(v) => 8 * v.len(),
        }
    }
    fn bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// Named tensors and string metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    pub metadata: BTreeMap<String, String>,
    pub tensors: BTreeMap<String, Tensor>,
}

impl Checkpoint {
    pub fn put_f32(&mut self, name: &str, shape: &[usize], data: Vec<f32>) {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "checkpoint tensor {name}: shape and data disagree");
        self.tensors.insert(name.to_string(), Tensor { shape: shape.to_vec(), data: TensorData::F32(data) });
    }

    pub fn put_i64(&mut self, name: &str, shape: &[usize], data: Vec<i64>) {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "checkpoint tensor {name}: shape and data disagree");
        self.tensors.insert(name.to_string(), Tensor { shape: shape.to_vec(), data: TensorData::I64(data) });
    }

    /// The F32 tensor `name`, which must have `shape` (usize::MAX in a dimension accepts any size there).
    /// `file` names the checkpoint in errors.
    pub fn f32(&self, file: &Path, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let t = self.tensor(file, name, shape)?;
        match &t.data {
            TensorData::F32(v) => Ok(v),
            other => Err(Error::input(format!("{}: tensor {name}: dtype {} (F32 expected)", file.display(), other.dtype()))),
        }
    }

    /// The I64 tensor `name` with `shape`.
    pub fn i64(&self, file: &Path, name: &str, shape: &[usize]) -> Result<&[i64]> {
        let t = self.tensor(file, name, shape)?;
        match &t.data {
            TensorData::I64(v) => Ok(v),
            other => Err(Error::input(format!("{}: tensor {name}: dtype {} (I64 expected)", file.display(), other.dtype()))),
        }
    }

    fn tensor(&self, file: &Path, name: &str, shape: &[usize]) -> Result<&Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| {
            Error::input(format!("{}: no tensor {name}: a checkpoint of another stage or architecture?", file.display()))
        })?;
        let fits = t.shape.len() == shape.len() && t.shape.iter().zip(shape).all(|(&a, &b)| b == usize::MAX || a == b);
        if !fits {
            return Err(Error::input(format!(
                "{}: tensor {name} has shape {:?}, this model needs {:?}: a checkpoint of another architecture",
                file.display(),
                t.shape,
                shape.iter().map(|&d| if d == usize::MAX { -1 } else { d as i64 }).collect::<Vec<_>>()
            )));
        }
        Ok(t)
    }

    /// The file's bytes: header (tensors in name order, padded with spaces to 8 bytes) then data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = Map::new();
        if !self.metadata.is_empty() {
            header.insert("__metadata__".into(), json!(self.metadata));
        }
        let mut offset = 0usize;
        for (name, t) in &self.tensors {
            let bytes = t.data.byte_len();
            header.insert(name.clone(), json!({"dtype": t.data.dtype(), "shape": t.shape, "data_offsets": [offset, offset + bytes]}));
            offset += bytes;
        }
        let mut text = Value::Object(header).to_string().into_bytes();
        while text.len() % 8 != 0 {
            text.push(b' ');
        }
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&text);
        for t in self.tensors.values() {
            out.extend_from_slice(&t.data.bytes());
        }
        out
    }

    /// Writes atomically: a temp file beside `path`, synced, then renamed over it.
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("safetensors.tmp");
        let io = |e: std::io::Error| Error::Io(format!("{}: cannot write the checkpoint: {e}", path.display()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.to_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::input(format!("{}: cannot read the checkpoint: {e}", path.display())))?;
        Self::from_bytes(&bytes).map_err(|why| Error::input(format!("{}: {why}", path.display())))
    }

    /// Parses a safetensors file; the error names the field or tensor at fault.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
        let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).ok_or("header length: file shorter than 8 bytes")?;
        let header_end = 8usize.checked_add(n as usize).filter(|&e| e <= bytes.len() && n <= 100 << 20).ok_or_else(|| {
            format!("header length: {n} bytes, past the end of the {}-byte file: truncated or not a checkpoint", bytes.len())
        })?;
        let header: Map<String, Value> =
            serde_json::from_slice(&bytes[8..header_end]).map_err(|e| format!("header: not safetensors JSON ({e})"))?;
        let data = &bytes[header_end..];
        let mut ck = Checkpoint::default();
        for (name, entry) in header {
            if name == "__metadata__" {
                for (k, v) in entry.as_object().ok_or("__metadata__: not an object")? {
                    ck.metadata.insert(k.clone(), v.as_str().ok_or_else(|| format!("__metadata__.{k}: not a string"))?.to_string());
                }
                continue;
            }
            let field = |f: &str| entry.get(f).ok_or_else(|| format!("tensor {name}: no {f}"));
            let dtype = field("dtype")?.as_str().ok_or_else(|| format!("tensor {name}: dtype not a string"))?;
            let shape: Vec<usize> = field("shape")?
                .as_array()
                .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
                .ok_or_else(|| format!("tensor {name}: shape not a list of sizes"))?;
            let offsets: Vec<usize> = field("data_offsets")?
                .as_array()
                .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
                .filter(|v: &Vec<usize>| v.len() == 2 && v[0] <= v[1])
                .ok_or_else(|| format!("tensor {name}: data_offsets not [begin, end]"))?;
            let raw = data.get(offsets[0]..offsets[1]).ok_or_else(|| {
                format!("tensor {name}: data_offsets {offsets:?} past the end of the data ({} bytes): truncated?", data.len())
            })?;
            let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format!("tensor {name}: shape overflows"))?;
            let elem = match dtype {
                "F32" => 4,
                "I64" => 8,
                other => return Err(format!("tensor {name}: dtype {other} is not used by gensync (F32, I64)")),
            };
            if raw.len() != count * elem {
                return Err(format!("tensor {name}: {} bytes for shape {shape:?} of {dtype}", raw.len()));
            }
            let data = match dtype {
                "F32" => TensorData::F32(raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
                _ => TensorData::I64(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()),
            };
            ck.tensors.insert(name, Tensor { shape, data });
        }
        Ok(ck)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint::default();
        c.metadata.insert("format".into(), "gensync".into());
        c.put_f32("gaussians.means", &[2, 3], vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]);
        c.put_i64("step", &[1], vec![7]);
        c.put_f32("b", &[1], vec![1.5]);
        c
    }

    #[test]
    fn round_trip_and_atomic_save() {
        let c = sample();
        let dir = std::env::temp_dir().join(format!("gensync-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.safetensors");
        c.save(&p).unwrap();
        assert_eq!(Checkpoint::load(&p).unwrap(), c);
        assert!(!p.with_extension("safetensors.tmp").exists());
        assert_eq!(Checkpoint::load(&p).unwrap().f32(&p, "gaussians.means", &[2, usize::MAX]).unwrap()[4], 1.0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A file written by Python's safetensors (numpy backend) reads back with the values it was given.
    #[test]
    fn reads_a_file_python_wrote() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python-written.safetensors");
        let c = Checkpoint::load(&p).unwrap();
        assert_eq!(c, sample_with_python_metadata());
    }

    fn sample_with_python_metadata() -> Checkpoint {
        let mut c = sample();
        c.metadata.insert("architecture".into(), "test".into());
        c
    }

    #[test]
    fn broken_files_name_the_field() {
        let bytes = sample().to_bytes();
        let err = |b: &[u8]| Checkpoint::from_bytes(b).unwrap_err();
        assert!(err(&bytes[..bytes.len() - 4]).contains("truncated"), "{}", err(&bytes[..bytes.len() - 4]));
        assert!(err(&bytes[..20]).starts_with("header length"));
        assert!(err(b"1234").starts_with("header length"));
        let mut garbage = bytes.clone();
        garbage[8] = b'#';
        assert!(err(&garbage).starts_with("header:"));
        let c = sample();
        let p = Path::new("x.safetensors");
        assert!(c.f32(p, "gaussians.means", &[3, 2]).unwrap_err().to_string().contains("another architecture"));
        assert!(c.f32(p, "triplane", &[1]).unwrap_err().to_string().contains("no tensor triplane"));
        assert!(c.f32(p, "step", &[1]).unwrap_err().to_string().contains("dtype I64"));
    }
}
