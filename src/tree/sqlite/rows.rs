//! How nodes, pending EXECs and session records map to rows and back.

use super::*;
use rusqlite::types::ToSqlOutput;

/// A node value's size as `Value::size` counts it: bool 1, numbers 4, text and blobs
/// their bytes (for quotas).
pub(super) const VALUE_SIZE: &str = "CASE WHEN n.value IS NULL THEN 0 WHEN n.format = 'bool' THEN 1 \
     WHEN typeof(n.value) IN ('integer', 'real') THEN 4 ELSE length(CAST(n.value AS BLOB)) END";

pub(super) const NODE_COLUMNS: &str = "path, format, mime, permanent, access, secret, value";

pub(super) const PENDING_COLUMNS: &str =
    "token, server_id, client_uri, report_to, handler, created_at";

pub(super) fn pending_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingExec> {
    Ok(PendingExec {
        token: r.get(0)?,
        server_id: r.get(1)?,
        client_uri: r.get(2)?,
        report_to: r.get(3)?,
        handler: r.get(4)?,
        created_at: r.get(5)?,
    })
}

pub(super) const SESSION_COLUMNS: &str =
    "id, server_id, trigger, started_at, ended_at, outcome, detail, packages, commands";

pub(super) fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        server_id: r.get(1)?,
        trigger: r.get(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        outcome: r.get(5)?,
        detail: r.get(6)?,
        packages: r.get(7)?,
        commands: r.get(8)?,
    })
}

/// The bounds of the path range holding the strict descendants of `path`: every path
/// starting with `path + "/"` sorts in `[path + "/", path + "0")` ('0' follows '/'), and a
/// path in that range that does not start so would need a character between '/' and '0'
/// after `path`, and there is none.
pub(super) fn descendant_range(path: &str) -> (String, String) {
    (format!("{path}/"), format!("{path}0"))
}

pub(super) fn cv_string(salt: &str, seq: i64) -> String {
    format!("{salt}{seq:x}")
}

pub(super) fn row_to_node(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Node, StoreError>> {
    let path: String = row.get(0)?;
    let format: String = row.get(1)?;
    let mime: Option<String> = row.get(2)?;
    let permanent: bool = row.get(3)?;
    let access: u8 = row.get(4)?;
    let secret: bool = row.get(5)?;
    let raw = row.get_ref(6)?;
    Ok(decode_node(
        path, &format, mime, permanent, access, secret, raw,
    ))
}

pub(super) fn decode_node(
    path: String,
    format: &str,
    mime: Option<String>,
    permanent: bool,
    access: u8,
    secret: bool,
    raw: ValueRef<'_>,
) -> Result<Node, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.clone(),
        reason,
    };
    let format =
        Format::parse(format).ok_or_else(|| corrupt(format!("unknown format {format:?}")))?;
    let text = |raw: ValueRef<'_>| -> Result<String, StoreError> {
        match raw {
            ValueRef::Text(t) => {
                String::from_utf8(t.to_vec()).map_err(|_| corrupt("not UTF-8".into()))
            }
            _ => Err(corrupt(format!(
                "{format} value stored as {:?}",
                raw.data_type()
            ))),
        }
    };
    let value = match (format, raw) {
        (Format::Node, ValueRef::Null) => None,
        (Format::Null, ValueRef::Null) => Some(Value::Null),
        (Format::Int, ValueRef::Integer(i)) => Some(Value::Int(
            i32::try_from(i).map_err(|_| corrupt("int out of range".into()))?,
        )),
        (Format::Bool, ValueRef::Integer(i)) => Some(Value::Bool(i != 0)),
        (Format::Float, ValueRef::Real(x)) => Some(Value::Float(x as f32)),
        (Format::Bin, ValueRef::Blob(b)) => Some(Value::Bin(b.to_vec())),
        (Format::Chr, r) => Some(Value::Chr(text(r)?)),
        (Format::B64, r) => Some(Value::B64(text(r)?)),
        (Format::Xml, r) => Some(Value::Xml(text(r)?)),
        (Format::Date, r) => Some(Value::Date(text(r)?)),
        (Format::Time, r) => Some(Value::Time(text(r)?)),
        (f, r) => return Err(corrupt(format!("{f} value stored as {:?}", r.data_type()))),
    };
    Ok(Node {
        path,
        props: NodeProps {
            format,
            mime,
            scope: if permanent {
                Scope::Permanent
            } else {
                Scope::Dynamic
            },
            access: AccessType::from_bits(access),
            secret,
        },
        value,
    })
}

pub(super) fn encode_value(value: Option<&Value>) -> ToSqlOutput<'_> {
    // Borrowed: SQLite copies what it binds, so a copy here would be a second one.
    ToSqlOutput::Borrowed(match value {
        None | Some(Value::Null) => ValueRef::Null,
        Some(Value::Int(i)) => ValueRef::Integer(i64::from(*i)),
        Some(Value::Bool(b)) => ValueRef::Integer(i64::from(*b)),
        Some(Value::Float(x)) => ValueRef::Real(f64::from(*x)),
        Some(Value::Bin(b)) => ValueRef::Blob(b),
        Some(Value::Chr(s) | Value::B64(s) | Value::Xml(s) | Value::Date(s) | Value::Time(s)) => {
            ValueRef::Text(s.as_bytes())
        }
    })
}

/// Checks that a node's value fits its format.
pub(super) fn check_node(node: &Node) -> Result<(), StoreError> {
    let ok = match (&node.value, node.props.format) {
        (None, Format::Node) => true,
        (Some(v), f) => v.format() == f,
        (None, _) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "node {:?}: {} node with value {:?}",
            node.path, node.props.format, node.value
        )))
    }
}

pub(super) fn depth(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.matches('/').count() + 1
    }
}
