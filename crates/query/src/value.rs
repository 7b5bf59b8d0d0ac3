//! Values, field types and columns as queries see them (the engine's own types
//! stay in the engine: the gateway builds without it).

use std::cmp::Ordering;

/// A field's type. 1.x has no unsigned in its line protocol; it is kept for
/// data written by other means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldType {
    Float,
    Integer,
    Unsigned,
    String,
    Boolean,
}

impl FieldType {
    /// The name `SHOW FIELD KEYS` and errors use.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::Unsigned => "unsigned",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Float | FieldType::Integer | FieldType::Unsigned
        )
    }
}

/// One value of a result cell or an expression.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    String(String),
    Boolean(bool),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::Integer(v) => Some(v as f64),
            Value::Unsigned(v) => Some(v as f64),
            _ => None,
        }
    }

    pub fn field_type(&self) -> Option<FieldType> {
        Some(match self {
            Value::Null => return None,
            Value::Float(_) => FieldType::Float,
            Value::Integer(_) => FieldType::Integer,
            Value::Unsigned(_) => FieldType::Unsigned,
            Value::String(_) => FieldType::String,
            Value::Boolean(_) => FieldType::Boolean,
        })
    }

    /// The order selectors and `distinct` use within one type (floats by
    /// `total_cmp` so NaN cannot break a sort).
    pub fn cmp_same(&self, o: &Value) -> Ordering {
        match (self, o) {
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Integer(a), Value::Integer(b)) => a.cmp(b),
            (Value::Unsigned(a), Value::Unsigned(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Less,
            (_, Value::Null) => Ordering::Greater,
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Boolean(_) => 1,
            Value::Integer(_) => 2,
            Value::Unsigned(_) => 3,
            Value::Float(_) => 4,
            Value::String(_) => 5,
        }
    }
}

/// Keeps the elements of `v` whose place in `keep` is true.
fn retain_mask<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        keep.get(i - 1).copied().unwrap_or(false)
    });
}

/// The values of one field of one series, in time order.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Float(Vec<f64>),
    Integer(Vec<i64>),
    Unsigned(Vec<u64>),
    String(Vec<String>),
    Boolean(Vec<bool>),
}

impl Values {
    pub fn len(&self) -> usize {
        match self {
            Values::Float(v) => v.len(),
            Values::Integer(v) => v.len(),
            Values::Unsigned(v) => v.len(),
            Values::String(v) => v.len(),
            Values::Boolean(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            Values::Float(_) => FieldType::Float,
            Values::Integer(_) => FieldType::Integer,
            Values::Unsigned(_) => FieldType::Unsigned,
            Values::String(_) => FieldType::String,
            Values::Boolean(_) => FieldType::Boolean,
        }
    }

    /// Keeps the values whose place in `keep` is true.
    pub fn retain_mask(&mut self, keep: &[bool]) {
        match self {
            Values::Float(v) => retain_mask(v, keep),
            Values::Integer(v) => retain_mask(v, keep),
            Values::Unsigned(v) => retain_mask(v, keep),
            Values::String(v) => retain_mask(v, keep),
            Values::Boolean(v) => retain_mask(v, keep),
        }
    }

    pub fn get(&self, i: usize) -> Value {
        match self {
            Values::Float(v) => v.get(i).map_or(Value::Null, |&x| Value::Float(x)),
            Values::Integer(v) => v.get(i).map_or(Value::Null, |&x| Value::Integer(x)),
            Values::Unsigned(v) => v.get(i).map_or(Value::Null, |&x| Value::Unsigned(x)),
            Values::String(v) => v.get(i).map_or(Value::Null, |x| Value::String(x.clone())),
            Values::Boolean(v) => v.get(i).map_or(Value::Null, |&x| Value::Boolean(x)),
        }
    }

    /// Bytes held, for the per-query memory limit.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Values::Float(v) => v.len() * 8,
            Values::Integer(v) => v.len() * 8,
            Values::Unsigned(v) => v.len() * 8,
            Values::String(v) => v.iter().map(|s| s.len() + 24).sum(),
            Values::Boolean(v) => v.len(),
        }
    }
}

/// A column: times (ascending, ns) and the values at them.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub times: Vec<i64>,
    pub values: Values,
}

impl Column {
    /// Keeps the points whose place in `keep` is true.
    pub fn retain_mask(&mut self, keep: &[bool]) {
        retain_mask(&mut self.times, keep);
        self.values.retain_mask(keep);
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        self.times.len() * 8 + self.values.heap_bytes()
    }
}
