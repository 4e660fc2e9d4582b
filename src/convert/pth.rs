//! Reads the tensors of a PyTorch checkpoint (`torch.save`'s zip format) from bytes in memory,
//! without running its pickle.
//!
//! A `.pth` is a zip archive: `ARCHIVE/data.pkl` (a pickle describing the saved object) and one
//! stored entry per tensor storage (`ARCHIVE/data/KEY`). The pickle is read by a small stack
//! machine that knows only the opcodes `torch.save` writes and *builds* no Python object: a
//! global is a name, calling it gives an inert [`Value::Call`] unless it is one of the three
//! functions that rebuild tensors (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`,
//! `collections.OrderedDict`), which are interpreted here. So a pickle that asks to run code
//! (`os.system`, `builtins.eval`, …) gets nothing run: its calls stay placeholders, and the
//! architecture check finds no weights in them. No crate fits: `pytorch-reader` reads only from
//! a file path (the page has bytes), `serde-pickle` has no persistent ids (how storages are named).
//! The legacy (pre-1.6, non-zip) format gets a clear error instead.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use tract_onnx::prelude::f16;

use crate::error::{Error, Result};

/// One tensor of the checkpoint, widened to f32, in row-major order.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The tensors of a checkpoint by name (`conv_body_first.weight`, …).
pub type StateDict = HashMap<String, Tensor>;

/// A pickle value as far as this reader needs to tell them apart.
#[derive(Clone, Debug)]
enum Value {
    None,
    /// A bool, float or byte string: nothing a state dict's structure needs.
    Scalar,
    Int(i64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// `module.name`, not resolved.
    Global(String),
    /// A storage named by a persistent id: (dtype, key in the archive's `data/`).
    Storage(Dtype, String),
    Tensor(Box<TensorRef>),
    /// A call of a global this reader does not interpret: kept as a name, never run.
    Call(String),
    Mark,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F32,
    F16,
    Bf16,
    F64,
    Other,
}

impl Dtype {
    fn of_storage(name: &str) -> Dtype {
        match name.rsplit('.').next().unwrap_or("") {
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "DoubleStorage" => Dtype::F64,
            _ => Dtype::Other,
        }
    }
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::F64 => 8,
            Dtype::Other => 1,
        }
    }
}

#[derive(Clone, Debug)]
struct TensorRef {
    dtype: Dtype,
    key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Model(format!("not a readable PyTorch checkpoint: {}", msg.into()))
}

/// Reads every floating-point tensor of a zip-format checkpoint. A dict at the top holding
/// `params_ema` (or `params`, `state_dict`) is looked into, as GFPGAN's and CodeFormer's are.
pub fn read(bytes: &[u8]) -> Result<StateDict> {
    if bytes.starts_with(&[0x80]) && bytes.len() > 1 && bytes[1] <= 5 {
        return Err(Error::Model(
            "this checkpoint is in PyTorch's legacy format (before 1.6); re-save it with \
             torch.save(torch.load(f), f) in a current PyTorch"
                .into(),
        ));
    }
    if !bytes.starts_with(b"PK\x03\x04") {
        return Err(bad("not a zip file"));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let pkl_name = zip
        .file_names()
        .filter_map(|n| n.ok())
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .map(|n| n.into_owned())
        .ok_or_else(|| bad("no data.pkl in the archive"))?;
    let root = pkl_name.trim_end_matches("data.pkl").to_owned();
    let mut pickle = Vec::new();
    zip.by_name(&pkl_name)
        .map_err(|e| bad(e.to_string()))?
        .take(256 << 20)
        .read_to_end(&mut pickle)
        .map_err(|e| bad(e.to_string()))?;
    let top = Machine::default().run(&pickle)?;
    let dict = weights_dict(top)?;
    // A call where the weights should be is a pickle asking to run code: it stayed inert.
    if let Some(f) = dict.iter().find_map(|(_, v)| match v {
        Value::Call(f) => Some(f.clone()),
        _ => None,
    }) {
        if !dict.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) {
            return Err(bad(format!(
                "where its weights should be, it asks to run {f} (Unblur never runs a pickle's code)"
            )));
        }
    }
    let mut out = StateDict::new();
    for (k, v) in dict {
        let (Value::Str(name), Value::Tensor(t)) = (k, v) else {
            continue;
        };
        if t.dtype == Dtype::Other {
            continue; // integer buffers (e.g. BatchNorm's counter): not weights
        }
        let data = tensor_data(&mut zip, &root, &t)?;
        out.insert(
            name,
            Tensor {
                shape: t.shape.clone(),
                data,
            },
        );
    }
    if out.is_empty() {
        return Err(bad("it holds no tensors"));
    }
    Ok(out)
}

fn weights_dict(top: Value) -> Result<Vec<(Value, Value)>> {
    let mut items = match top {
        Value::Dict(items) => items,
        Value::Call(f) => {
            return Err(bad(format!(
                "it is a call of {f}, not a dict of tensors (Unblur never runs a pickle's code)"
            )))
        }
        _ => return Err(bad("its top level is not a dict of tensors")),
    };
    for key in ["params_ema", "params", "state_dict"] {
        if let Some(i) = items.iter().position(|(k, v)| {
            matches!(k, Value::Str(s) if s == key) && matches!(v, Value::Dict(_))
        }) {
            let Value::Dict(inner) = items.swap_remove(i).1 else {
                unreachable!()
            };
            return Ok(inner);
        }
    }
    Ok(items)
}

fn tensor_data(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    root: &str,
    t: &TensorRef,
) -> Result<Vec<f32>> {
    let name = format!("{root}data/{}", t.key);
    let mut entry = zip
        .by_name(&name)
        .map_err(|_| bad(format!("storage {} is missing", t.key)))?;
    let len = entry.size() as usize;
    let numel: usize = t.shape.iter().product();
    // The furthest element the view reaches, which must lie inside the storage.
    let reach = if numel == 0 {
        0
    } else {
        t.offset
            + t.shape
                .iter()
                .zip(&t.stride)
                .map(|(&n, &s)| (n - 1) * s)
                .sum::<usize>()
            + 1
    };
    if reach * t.dtype.size() > len {
        return Err(bad(format!("storage {} is shorter than its tensor", t.key)));
    }
    let mut raw = Vec::with_capacity(len);
    entry
        .read_to_end(&mut raw)
        .map_err(|e| bad(e.to_string()))?;
    let at = |i: usize| -> f32 {
        let b = &raw[i * t.dtype.size()..];
        match t.dtype {
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::F16 => f16::from_le_bytes([b[0], b[1]]).to_f32(),
            Dtype::Bf16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
            Dtype::F64 => f64::from_le_bytes(b[..8].try_into().unwrap()) as f32,
            Dtype::Other => unreachable!(),
        }
    };
    let mut data = Vec::with_capacity(numel);
    let contiguous = t
        .stride
        .iter()
        .rev()
        .zip(t.shape.iter().rev())
        .try_fold(1usize, |want, (&s, &n)| {
            (s == want || n == 1).then_some(want * n)
        })
        .is_some();
    if contiguous {
        data.extend((0..numel).map(|i| at(t.offset + i)));
    } else {
        let mut idx = vec![0usize; t.shape.len()];
        for _ in 0..numel {
            let pos: usize = idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum();
            data.push(at(t.offset + pos));
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
    Ok(data)
}

/// The pickle stack machine (protocols 2–5, the opcodes `torch.save` writes).
#[derive(Default)]
struct Machine {
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl Machine {
    fn run(mut self, data: &[u8]) -> Result<Value> {
        let mut r = Reader { data, pos: 0 };
        loop {
            let op = r.u8()?;
            match op {
                0x80 => {
                    r.u8()?; // PROTO
                }
                0x95 => {
                    r.take(8)?; // FRAME
                }
                b'.' => return self.pop(), // STOP
                b'}' => self.stack.push(Value::Dict(vec![])),
                b']' => self.stack.push(Value::List(vec![])),
                b')' => self.stack.push(Value::Tuple(vec![])),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Scalar),
                0x89 => self.stack.push(Value::Scalar),
                b'J' => {
                    let v = i32::from_le_bytes(r.take(4)?.try_into().unwrap());
                    self.stack.push(Value::Int(v as i64))
                }
                b'K' => {
                    let v = r.u8()?;
                    self.stack.push(Value::Int(v as i64))
                }
                b'M' => {
                    let v = u16::from_le_bytes(r.take(2)?.try_into().unwrap());
                    self.stack.push(Value::Int(v as i64))
                }
                0x8a => {
                    // LONG1: little-endian two's complement
                    let n = r.u8()? as usize;
                    let b = r.take(n)?;
                    if n > 8 {
                        return Err(bad("an integer too large"));
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v))
                }
                b'G' => {
                    r.take(8)?;
                    self.stack.push(Value::Scalar)
                }
                b'X' => {
                    let n = r.u32()? as usize;
                    let s = r.str(n)?;
                    self.stack.push(Value::Str(s))
                }
                0x8c => {
                    let n = r.u8()? as usize;
                    let s = r.str(n)?;
                    self.stack.push(Value::Str(s))
                }
                0x8d => {
                    let n = u64::from_le_bytes(r.take(8)?.try_into().unwrap()) as usize;
                    let s = r.str(n)?;
                    self.stack.push(Value::Str(s))
                }
                b'U' => {
                    let n = r.u8()? as usize;
                    r.take(n)?;
                    self.stack.push(Value::Scalar)
                }
                b'T' | b'B' => {
                    let n = r.u32()? as usize;
                    r.take(n)?;
                    self.stack.push(Value::Scalar)
                }
                b'C' => {
                    let n = r.u8()? as usize;
                    r.take(n)?;
                    self.stack.push(Value::Scalar)
                }
                b'c' => {
                    // GLOBAL: "module\nname\n"
                    let module = r.line()?;
                    let name = r.line()?;
                    self.stack.push(Value::Global(format!("{module}.{name}")))
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop_str()?;
                    let module = self.pop_str()?;
                    self.stack.push(Value::Global(format!("{module}.{name}")))
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(bad("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items))
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items))
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items)?;
                    self.stack.push(Value::Dict(pairs))
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.stack.last_mut() {
                        Some(Value::List(l)) => l.push(v),
                        _ => return Err(bad("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.stack.last_mut() {
                        Some(Value::List(l)) => l.extend(items),
                        _ => return Err(bad("APPENDS to a non-list")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let p = pairs(items)?;
                    self.set_items(p)?;
                }
                b'q' => {
                    let i = r.u8()? as u32;
                    self.put(i)?
                }
                b'r' => {
                    let i = r.u32()?;
                    self.put(i)?
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.put(i)?
                }
                b'h' => {
                    let i = r.u8()? as u32;
                    self.get(i)?
                }
                b'j' => {
                    let i = r.u32()?;
                    self.get(i)?
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| bad("DUP of nothing"))?;
                    self.stack.push(v)
                }
                b'Q' => {
                    // BINPERSID: ('storage', StorageType, key, location, numel)
                    let pid = self.pop()?;
                    self.stack.push(persistent(pid)?)
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    self.stack.push(reduce(f, args)?)
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args), never run
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    self.stack.push(Value::Call(global_name(&cls)))
                }
                b'b' => {
                    // BUILD: set state on an object; a dict's state (OrderedDict's _metadata)
                    // and placeholders' state are dropped.
                    self.pop()?;
                }
                0x8f => self.stack.push(Value::List(vec![])), // EMPTY_SET, read as a list
                0x90 => {
                    let items = self.pop_mark()?;
                    if let Some(Value::List(l)) = self.stack.last_mut() {
                        l.extend(items)
                    }
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items))
                }
                other => {
                    return Err(bad(format!(
                        "pickle opcode 0x{other:02x} at byte {} is not one torch.save writes",
                        r.pos - 1
                    )))
                }
            }
        }
    }

    fn pop(&mut self) -> Result<Value> {
        match self.stack.pop() {
            Some(Value::Mark) | None => Err(bad("stack underflow")),
            Some(v) => Ok(v),
        }
    }

    fn pop_str(&mut self) -> Result<String> {
        match self.pop()? {
            Value::Str(s) => Ok(s),
            _ => Err(bad("a global's name is not a string")),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| bad("no mark on the stack"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn set_items(&mut self, items: Vec<(Value, Value)>) -> Result<()> {
        match self.stack.last_mut() {
            Some(Value::Dict(d)) => {
                d.extend(items);
                Ok(())
            }
            // SETITEM(S) on a placeholder object: dropped, like every other state of it.
            Some(Value::Call(_)) => Ok(()),
            _ => Err(bad("SETITEM on a non-dict")),
        }
    }

    fn put(&mut self, i: u32) -> Result<()> {
        let v = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| bad("memo of nothing"))?;
        if matches!(v, Value::Mark) {
            return Err(bad("memo of a mark"));
        }
        self.memo.insert(i, v);
        Ok(())
    }

    fn get(&mut self, i: u32) -> Result<()> {
        let v = self
            .memo
            .get(&i)
            .cloned()
            .ok_or_else(|| bad(format!("memo {i} is not set")))?;
        self.stack.push(v);
        Ok(())
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return Err(bad("a dict with an odd number of items"));
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn global_name(v: &Value) -> String {
    match v {
        Value::Global(g) => g.clone(),
        _ => "<object>".into(),
    }
}

fn persistent(pid: Value) -> Result<Value> {
    let Value::Tuple(t) = pid else {
        return Err(bad("a persistent id that is not a tuple"));
    };
    match t.as_slice() {
        [Value::Str(kind), ty, Value::Str(key), ..] if kind == "storage" => Ok(Value::Storage(
            Dtype::of_storage(&global_name(ty)),
            key.clone(),
        )),
        _ => Err(bad("a persistent id that is not a storage")),
    }
}

fn usizes(v: &Value) -> Result<Vec<usize>> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err(bad("a tensor size that is not a count")),
            })
            .collect(),
        _ => Err(bad("a tensor size that is not a tuple")),
    }
}

/// Interprets the calls that rebuild tensors and state dicts; every other call stays inert.
fn reduce(f: Value, args: Value) -> Result<Value> {
    let name = global_name(&f);
    let Value::Tuple(args) = args else {
        return Ok(Value::Call(name));
    };
    match name.as_str() {
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
            let [Value::Storage(dtype, key), Value::Int(offset), size, stride, ..] =
                args.as_slice()
            else {
                return Err(bad("a tensor without its storage"));
            };
            Ok(Value::Tensor(Box::new(TensorRef {
                dtype: *dtype,
                key: key.clone(),
                offset: (*offset).max(0) as usize,
                shape: usizes(size)?,
                stride: usizes(stride)?,
            })))
        }
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
            match args.into_iter().next() {
                Some(t @ Value::Tensor(_)) => Ok(t),
                _ => Err(bad("a parameter without a tensor")),
            }
        }
        "collections.OrderedDict" => Ok(Value::Dict(vec![])),
        _ => Ok(Value::Call(name)),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| bad("the pickle ends early"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn str(&mut self, n: usize) -> Result<String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| bad("a string that is not UTF-8"))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("the pickle ends early"))?;
        let s = self.str(n)?;
        self.pos += 1;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pickle_that_asks_to_run_code_runs_nothing() {
        // pickle.dumps of a __reduce__ returning (os.system, ("echo pwned",)), protocol 2
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
        let v = Machine::default().run(evil).unwrap();
        assert!(
            matches!(v, Value::Call(ref n) if n == "posix.system"),
            "{v:?}"
        );
    }

    #[test]
    fn a_checkpoint_whose_weights_are_a_call_names_it() {
        // torch.save's layout, its data.pkl being pickle.dumps({"params_ema": <os.system call>})
        let pkl = b"\x80\x02}q\x00X\n\x00\x00\x00params_emaq\x01cposix\nsystem\nq\x02X\x04\x00\x00\x00echoq\x03\x85q\x04Rq\x05s.";
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("archive/data.pkl", opts).unwrap();
        std::io::Write::write_all(&mut z, pkl).unwrap();
        z.finish().unwrap();
        let e = read(buf.get_ref()).unwrap_err().to_string();
        assert!(
            e.contains("posix.system") && e.contains("never runs"),
            "{e}"
        );
    }

    #[test]
    fn legacy_and_non_zip_files_are_named() {
        let e = read(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.").unwrap_err();
        assert!(e.to_string().contains("legacy format"), "{e}");
        let e = read(b"hello").unwrap_err();
        assert!(e.to_string().contains("not a zip"), "{e}");
    }
}
