//! CSV files written from row types: each row a `Serialize` struct whose
//! field names, in order, are the header, so a column is named once, where
//! its field is. A field that is itself a struct becomes one column per
//! inner field, `<field>_<inner>` (summary.csv's `final_loss_mean`,
//! `final_loss_sd`); an enum of unit variants is written as its serde name
//! (`full`, `naive`); numbers as Rust prints them (`NaN` and `inf` too).
//! Not a general CSV library: no sequences, maps or nested enums.

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};

/// What a row cannot be written as.
#[derive(Debug)]
pub struct CsvError(String);

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CSV: {}", self.0)
    }
}

impl std::error::Error for CsvError {}

impl ser::Error for CsvError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CsvError(msg.to_string())
    }
}

/// The header and one line per row; nothing for no rows (the header comes
/// from a row's fields).
pub fn to_csv<T: Serialize>(rows: &[T]) -> Result<String, CsvError> {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut cells = Vec::new();
        row.serialize(Cells { column: String::new(), cells: &mut cells })?;
        if i == 0 {
            out += &cells.iter().map(|(column, _)| column.as_str()).collect::<Vec<_>>().join(",");
            out.push('\n');
        }
        out += &cells.iter().map(|(_, value)| quoted(value)).collect::<Vec<_>>().join(",");
        out.push('\n');
    }
    Ok(out)
}

/// `value` as a CSV field: in quotes, inner quotes doubled, only where it
/// holds a comma, a quote or a line break.
fn quoted(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Serialises one value into `(column, text)` cells, `column` being the
/// name it is written under.
struct Cells<'a> {
    column: String,
    cells: &'a mut Vec<(String, String)>,
}

impl Cells<'_> {
    fn cell(self, text: String) -> Result<(), CsvError> {
        self.cells.push((self.column, text));
        Ok(())
    }

    fn unsupported(&self, what: &str) -> CsvError {
        CsvError(format!("column {:?}: a {what} has no CSV form", self.column))
    }
}

macro_rules! as_text {
    ($($method:ident: $t:ty),*) => {
        $(fn $method(self, v: $t) -> Result<(), CsvError> {
            self.cell(v.to_string())
        })*
    };
}

impl<'a> Serializer for Cells<'a> {
    type Ok = ();
    type Error = CsvError;
    type SerializeSeq = Impossible<(), CsvError>;
    type SerializeTuple = Impossible<(), CsvError>;
    type SerializeTupleStruct = Impossible<(), CsvError>;
    type SerializeTupleVariant = Impossible<(), CsvError>;
    type SerializeMap = Impossible<(), CsvError>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Impossible<(), CsvError>;

    as_text!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_f32: f32, serialize_f64: f64, serialize_char: char, serialize_str: &str);

    fn serialize_bytes(self, _: &[u8]) -> Result<(), CsvError> {
        Err(self.unsupported("byte string"))
    }
    fn serialize_none(self) -> Result<(), CsvError> {
        self.cell(String::new())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), CsvError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CsvError> {
        self.cell(String::new())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CsvError> {
        self.cell(String::new())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), CsvError> {
        self.cell(variant.to_string())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Result<(), CsvError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), CsvError> {
        Err(self.unsupported("enum variant with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CsvError> {
        Err(self.unsupported("sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CsvError> {
        Err(self.unsupported("tuple"))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, CsvError> {
        Err(self.unsupported("tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CsvError> {
        Err(self.unsupported("enum variant with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CsvError> {
        Err(self.unsupported("map"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, CsvError> {
        Ok(Fields { prefix: self.column, cells: self.cells })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CsvError> {
        Err(self.unsupported("enum variant with data"))
    }
}

/// A struct's fields, each under its name after the struct's own
/// (`<prefix>_<field>`; the row itself has no prefix).
struct Fields<'a> {
    prefix: String,
    cells: &'a mut Vec<(String, String)>,
}

impl SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = CsvError;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), CsvError> {
        let column = if self.prefix.is_empty() { key.to_string() } else { format!("{}_{key}", self.prefix) };
        value.serialize(Cells { column, cells: self.cells })
    }

    fn end(self) -> Result<(), CsvError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::to_csv;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Pair {
        mean: f64,
        sd: f64,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Full,
    }

    #[derive(Serialize)]
    struct Row {
        kind: Kind,
        n: usize,
        name: &'static str,
        loss: Pair,
        missing: Option<f64>,
    }

    #[test]
    fn columns_follow_the_fields() {
        let rows = [
            Row { kind: Kind::Full, n: 3, name: "a,b", loss: Pair { mean: 0.5, sd: f64::NAN }, missing: None },
            Row { kind: Kind::Full, n: 4, name: "c", loss: Pair { mean: 1e-20, sd: 2.0 }, missing: Some(1.5) },
        ];
        assert_eq!(
            to_csv(&rows).unwrap(),
            "kind,n,name,loss_mean,loss_sd,missing\nfull,3,\"a,b\",0.5,NaN,\nfull,4,c,0.00000000000000000001,2,1.5\n"
        );
        assert_eq!(to_csv::<Row>(&[]).unwrap(), "");
    }
}
