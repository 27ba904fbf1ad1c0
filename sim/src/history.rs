//! The client history: every operation as an invocation and a completion, in the shape Jepsen's
//! checkers read (`type` is invoke, ok, fail or info; info means the outcome is unknown).

use std::sync::{Arc, Mutex};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpFn {
    Send,
    Poll,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Op {
    pub index: usize,
    pub time_ms: u64,
    pub process: String,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub f: OpFn,
    pub partition: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acks: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// For polls: (offset, value) read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<(i64, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Default)]
pub struct History {
    ops: Arc<Mutex<Vec<Op>>>,
}

impl History {
    pub fn push(&self, mut op: Op) {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        op.index = ops.len();
        ops.push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn len(&self) -> usize {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
