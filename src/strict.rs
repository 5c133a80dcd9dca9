//! Settings objects read strictly: every key of an object is checked against
//! the fields serde's derive declares for it, at every level, so a key that
//! is no setting is refused by name, with the nearest setting or the list of
//! them, wherever the object came from (JSON natively, a JavaScript object
//! through the wasm API).
//!
//! Why serde's `deny_unknown_fields` is not enough on its own: serde-wasm-
//! bindgen reads a struct by asking the JavaScript object for each declared
//! field in turn (its `deserialize_struct`), so the derive never sees any
//! other key and `deny_unknown_fields` never fires. Here the object is first
//! read whole into a `Tree` (every key, every value as it was given, NaN and
//! infinities kept), and the struct is read from that: the derive sees every
//! key, and its own list of fields is the only list of names (`fields_of`).
//!
//! Not here: turning a JavaScript value into a `Tree` (`web`, which needs
//! js-sys), or what each setting may be (each struct's `validate`).

use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};
use serde::{forward_to_deserialize_any, Deserialize, Deserializer};

/// A settings value as given: JSON's shapes, with a number kept as the
/// integer or the float it was (a JavaScript number is an `Int` when it is
/// a safe integer, as serde-wasm-bindgen reads it).
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    /// null (or JavaScript's undefined)
    Unit,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Tree>),
    /// An object's keys and values, in the order given.
    Map(Vec<(String, Tree)>),
}

/// What reading a `Tree` can go wrong with: an unknown key (told apart so
/// that `read` can say it in words), or anything else serde says.
#[derive(Debug, Clone, PartialEq)]
pub enum StrictError {
    UnknownField { field: String, expected: &'static [&'static str] },
    Other(String),
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictError::UnknownField { field, .. } => write!(f, "unknown field {}", shown(field)),
            StrictError::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for StrictError {}

impl de::Error for StrictError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        StrictError::Other(message.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        StrictError::UnknownField { field: field.to_string(), expected }
    }
}

impl Tree {
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Tree::Unit => Unexpected::Unit,
            Tree::Bool(b) => Unexpected::Bool(*b),
            Tree::Int(i) => Unexpected::Signed(*i),
            Tree::UInt(u) => Unexpected::Unsigned(*u),
            Tree::Float(x) => Unexpected::Float(*x),
            Tree::Str(s) => Unexpected::Str(s),
            Tree::Seq(_) => Unexpected::Seq,
            Tree::Map(_) => Unexpected::Map,
        }
    }

    /// What this value is, in words, for an error.
    fn kind(&self) -> &'static str {
        match self {
            Tree::Unit => "null or undefined",
            Tree::Bool(_) => "a boolean",
            Tree::Int(_) | Tree::UInt(_) | Tree::Float(_) => "a number",
            Tree::Str(_) => "a string",
            Tree::Seq(_) => "an array",
            Tree::Map(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(source: D) -> Result<Tree, D::Error> {
        struct TreeVisitor;
        impl<'de> Visitor<'de> for TreeVisitor {
            type Value = Tree;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any settings value")
            }
            fn visit_unit<E>(self) -> Result<Tree, E> {
                Ok(Tree::Unit)
            }
            fn visit_none<E>(self) -> Result<Tree, E> {
                Ok(Tree::Unit)
            }
            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Tree, D::Error> {
                Tree::deserialize(inner)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Tree, E> {
                Ok(Tree::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Tree, E> {
                Ok(Tree::Int(i))
            }
            fn visit_u64<E>(self, u: u64) -> Result<Tree, E> {
                Ok(i64::try_from(u).map_or(Tree::UInt(u), Tree::Int))
            }
            fn visit_f64<E>(self, x: f64) -> Result<Tree, E> {
                Ok(Tree::Float(x))
            }
            fn visit_str<E>(self, s: &str) -> Result<Tree, E> {
                Ok(Tree::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Tree, E> {
                Ok(Tree::Str(s))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Tree::Seq(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Tree>()? {
                    entries.push((key, value));
                }
                Ok(Tree::Map(entries))
            }
        }
        source.deserialize_any(TreeVisitor)
    }
}

impl<'de> IntoDeserializer<'de, StrictError> for Tree {
    type Deserializer = Tree;
    fn into_deserializer(self) -> Tree {
        self
    }
}

impl<'de> Deserializer<'de> for Tree {
    type Error = StrictError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        match self {
            Tree::Unit => visitor.visit_unit(),
            Tree::Bool(b) => visitor.visit_bool(b),
            Tree::Int(i) => visitor.visit_i64(i),
            Tree::UInt(u) => visitor.visit_u64(u),
            Tree::Float(x) => visitor.visit_f64(x),
            Tree::Str(s) => visitor.visit_string(s),
            Tree::Seq(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Tree::Map(entries) => {
                let mut map = MapDeserializer::new(entries.into_iter());
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        match self {
            Tree::Unit => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    /// Only an object is a struct: every key of it goes to the derive, which
    /// refuses one it does not declare. (An array would otherwise be read
    /// field by field in order, as serde allows.)
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, StrictError> {
        match self {
            map @ Tree::Map(_) => map.deserialize_any(visitor),
            other => Err(StrictError::Other(format!("expected an object, got {}", other.kind()))),
        }
    }

    /// A unit variant as its name; a variant with data as an object of one key.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, StrictError> {
        match self {
            Tree::Str(name) => visitor.visit_enum(name.into_deserializer()),
            Tree::Map(entries) if entries.len() == 1 => {
                visitor.visit_enum(de::value::MapAccessDeserializer::new(MapDeserializer::new(entries.into_iter())))
            }
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, StrictError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, StrictError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map identifier
    }
}

/// A key as an error shows it: as written when it is a plain name, else
/// quoted; at most 40 characters.
fn shown(key: &str) -> String {
    let short: String = key.chars().take(40).collect();
    let plain = !short.is_empty() && short.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let cut = if short.len() < key.len() { "…" } else { "" };
    if plain {
        format!("{short}{cut}")
    } else {
        format!("{short:?}{cut}")
    }
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`,
/// letters compared without case.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The name in `names` a mistyped `key` most likely meant: within a third
/// of its length in edits (at least one), the closest.
pub fn nearest<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    if key.chars().count() > 64 {
        return None;
    }
    let reach = (key.chars().count() / 3).max(1);
    names
        .iter()
        .map(|n| (edit_distance(key, n), *n))
        .filter(|(d, _)| *d <= reach)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// The refusal of key `field` at `parent` (a dotted path, empty at the top),
/// where the struct reading it declares `expected`: with the nearest name
/// when there is one, else every name. `what` is what one of them is ("lab
/// setting").
fn unknown_field(parent: &str, field: &str, expected: &[&str], what: &str) -> String {
    let at = |name: &str| if parent.is_empty() { name.to_string() } else { format!("{parent}.{name}") };
    let name = at(&shown(field));
    match nearest(field, expected) {
        Some(near) => format!("{name} is not a {what}; did you mean {}?", at(near)),
        None if parent.is_empty() => format!("{name} is not a {what} (the {what}s are: {})", expected.join(", ")),
        None => format!("{name} is not a {what} (the {what}s in {parent} are: {})", expected.join(", ")),
    }
}

/// Reads `T` from `tree`, every key checked: the reason in words when it
/// cannot, starting with the path of the value at fault ("optimizer.lr:
/// invalid type …"), or for a key that is no field, "seqlen is not a lab
/// setting; did you mean seq_len?". `what` names one field of `T` to the
/// reader ("lab setting").
pub fn read<T: DeserializeOwned>(tree: Tree, what: &str) -> Result<T, String> {
    read_at(tree, what, "")
}

/// `read` of a value that sits at `root` (a dotted path, "state.config") in
/// what the caller was given: every path said from there
/// ("state.config.batch: invalid type …").
pub fn read_at<T: DeserializeOwned>(tree: Tree, what: &str, root: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = match (root, e.path().to_string()) {
            ("", path) => path,
            (root, path) if path == "." => root.to_string(),
            (root, path) => format!("{root}.{path}"),
        };
        match e.into_inner() {
            StrictError::UnknownField { field, expected } => {
                // the path ends at the unknown key itself, or at its parent
                let parent = match path.rsplit_once('.') {
                    Some((parent, last)) if last == field => parent.to_string(),
                    _ if path == field || path == "." => String::new(),
                    _ => path,
                };
                unknown_field(&parent, &field, expected, what)
            }
            StrictError::Other(message) if path == "." => message,
            StrictError::Other(message) => format!("{path}: {message}"),
        }
    })
}

/// The field names serde's derive gives struct `T`, in declaration order:
/// the one list of `T`'s names (read off what the derive hands
/// `deserialize_struct`).
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct FieldNames<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for FieldNames<'_> {
        type Error = StrictError;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, StrictError> {
            Err(StrictError::Other("not a struct".into()))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, StrictError> {
            *self.0 = fields;
            Err(StrictError::Other("names taken".into()))
        }
        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut names));
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        kind: String,
        rate: f64,
    }

    impl Default for Inner {
        fn default() -> Self {
            Self { kind: "a".into(), rate: 0.5 }
        }
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default, deny_unknown_fields)]
    struct Outer {
        seq_len: usize,
        micro_batch: usize,
        inner: Inner,
        text: Option<String>,
    }

    fn tree(v: serde_json::Value) -> Tree {
        Tree::deserialize(v).unwrap()
    }

    #[test]
    fn every_key_is_checked_at_every_level_and_named() {
        let read_outer = |v| read::<Outer>(tree(v), "setting");
        assert_eq!(read_outer(json!({"seq_len": 4, "inner": {"rate": 2}})).unwrap().inner.rate, 2.0);
        assert_eq!(read_outer(json!({"seqlen": 4})).unwrap_err(), "seqlen is not a setting; did you mean seq_len?");
        assert_eq!(
            read_outer(json!({"microbatch": 4})).unwrap_err(),
            "microbatch is not a setting; did you mean micro_batch?"
        );
        assert_eq!(
            read_outer(json!({"bogus": 1})).unwrap_err(),
            "bogus is not a setting (the settings are: seq_len, micro_batch, inner, text)"
        );
        assert_eq!(
            read_outer(json!({"inner": {"rte": 1}})).unwrap_err(),
            "inner.rte is not a setting; did you mean inner.rate?"
        );
        assert_eq!(
            read_outer(json!({"inner": {"speed": 1}})).unwrap_err(),
            "inner.speed is not a setting (the settings in inner are: kind, rate)"
        );
        let e = read_outer(json!({"<img src=x onerror=alert(1)>": 1})).unwrap_err();
        assert!(e.starts_with("\"<img src=x onerror=alert(1)>\" is not a setting"), "{e}");
        let e = read_outer(json!({"x".repeat(2000): 1})).unwrap_err();
        assert!(e.len() < 200, "{e}");
        // types, and an array where an object belongs, are named by path
        assert_eq!(
            read_outer(json!({"inner": {"rate": "fast"}})).unwrap_err(),
            "inner.rate: invalid type: string \"fast\", expected f64"
        );
        assert_eq!(read_outer(json!({"inner": ["b", 1]})).unwrap_err(), "inner: expected an object, got an array");
        assert_eq!(read_outer(json!([4, 2])).unwrap_err(), "expected an object, got an array");
        assert_eq!(read_outer(json!(null)).unwrap_err(), "expected an object, got null or undefined");
        assert_eq!(
            read_outer(json!({"seq_len": 2.5})).unwrap_err(),
            "seq_len: invalid type: floating point `2.5`, expected usize"
        );
        // NaN survives to the struct's own check (a JSON value cannot hold it; a JavaScript one can)
        let nan = read::<Inner>(Tree::Map(vec![("rate".into(), Tree::Float(f64::NAN))]), "setting").unwrap();
        assert!(nan.rate.is_nan());
        assert_eq!(read_outer(json!({"text": null})).unwrap(), Outer::default());
    }

    #[test]
    fn nearest_names_only_close_ones() {
        let names = ["batch", "micro_batch", "seq_len", "lora_rank", "corpus"];
        assert_eq!(nearest("Batch", &names), Some("batch"));
        assert_eq!(nearest("seqlen", &names), Some("seq_len"));
        assert_eq!(nearest("lorarank", &names), Some("lora_rank"));
        assert_eq!(nearest("bacth", &names), Some("batch"));
        for far in ["bogus", "lr", "__proto__", "constructor", ""] {
            assert_eq!(nearest(far, &names), None, "{far}");
        }
        assert_eq!(fields_of::<Inner>(), ["kind", "rate"]);
    }
}
