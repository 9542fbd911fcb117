//! Inserting checked node rows: [`BATCH`] rows per statement while a replacement streams
//! in, the rest one per statement. SQLite runs a statement's fixed work (and, with the
//! schema's triggers, a statement journal) once per statement, so a large HGET's inserts
//! take about two thirds of the time of one statement per row (docs/performance.md).

use rusqlite::{CachedStatement, Statement, Transaction};

use super::rows::encode_value;
use crate::tree::{Node, Scope, StoreError, Value, parent_path};

/// Rows per batch statement: 288 parameters, well under SQLite's limit.
pub(super) const BATCH: usize = 32;

const INSERT: &str = "INSERT INTO node (instance_id, path, parent, format, mime, permanent, access, secret, value) VALUES ";
const ROW: &str = "(?,?,?,?,?,?,?,?,?)";
const COLUMNS: usize = 9;

fn sql(rows: usize) -> String {
    let mut sql = String::with_capacity(INSERT.len() + rows * (ROW.len() + 1));
    sql.push_str(INSERT);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(ROW);
    }
    sql
}

/// The two insert statements of one write, prepared when first needed.
#[derive(Default)]
pub(super) struct Inserts<'t> {
    one: Option<CachedStatement<'t>>,
    batch: Option<CachedStatement<'t>>,
}

/// The statement in `slot`, prepared from `sql()` on first use.
fn prepared<'s, 't>(
    slot: &'s mut Option<CachedStatement<'t>>,
    tx: &'t Transaction<'_>,
    sql: impl FnOnce() -> String,
) -> Result<&'s mut CachedStatement<'t>, StoreError> {
    let stmt = match slot.take() {
        Some(s) => s,
        None => tx.prepare_cached(&sql())?,
    };
    Ok(slot.insert(stmt))
}

impl<'t> Inserts<'t> {
    /// Inserts `rows` into instance `id`: whole batches with the batch statement, the
    /// remainder one by one. A batch refused by a constraint (a node listed twice, a schema
    /// rule) is undone whole by SQLite and goes again row by row, so the error names the
    /// node that caused it. Returns the bytes their values hold, for the instance's count
    /// (migration v10, `Writer::add_bytes`).
    pub(super) fn rows(
        &mut self,
        tx: &'t Transaction<'_>,
        id: i64,
        rows: &[Node],
    ) -> Result<i64, StoreError> {
        let bytes: usize = rows
            .iter()
            .map(|n| n.value.as_ref().map_or(0, Value::size))
            .sum();
        let mut chunks = rows.chunks_exact(BATCH);
        for chunk in chunks.by_ref() {
            let batch = prepared(&mut self.batch, tx, || sql(BATCH))?;
            let bound = chunk
                .iter()
                .enumerate()
                .try_for_each(|(i, node)| bind(batch, 1 + i * COLUMNS, id, node));
            match bound.and_then(|()| batch.raw_execute()) {
                Ok(_) => {}
                Err(e) if is_constraint(&e) => {
                    for node in chunk {
                        insert_one(prepared(&mut self.one, tx, || sql(1))?, id, node)?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        for node in chunks.remainder() {
            insert_one(prepared(&mut self.one, tx, || sql(1))?, id, node)?;
        }
        Ok(i64::try_from(bytes).unwrap_or(i64::MAX))
    }
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Binds one row's values from parameter `first` (1-based).
fn bind(stmt: &mut Statement<'_>, first: usize, id: i64, node: &Node) -> rusqlite::Result<()> {
    let props = &node.props;
    stmt.raw_bind_parameter(first, id)?;
    stmt.raw_bind_parameter(first + 1, node.path.as_str())?;
    stmt.raw_bind_parameter(first + 2, parent_path(&node.path))?;
    stmt.raw_bind_parameter(first + 3, props.format.as_str())?;
    stmt.raw_bind_parameter(first + 4, props.mime.as_deref())?;
    stmt.raw_bind_parameter(first + 5, props.scope == Scope::Permanent)?;
    stmt.raw_bind_parameter(first + 6, props.access.bits())?;
    stmt.raw_bind_parameter(first + 7, props.secret)?;
    stmt.raw_bind_parameter(first + 8, encode_value(node.value.as_ref()))
}

/// One row. A second node at one path is the data's fault, said as such; a schema
/// rule's refusal goes up as itself (the transaction names it).
fn insert_one(stmt: &mut Statement<'_>, id: i64, node: &Node) -> Result<(), StoreError> {
    bind(stmt, 1, id, node)?;
    match stmt.raw_execute() {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            Err(StoreError::Invalid(format!(
                "node {:?} listed twice",
                node.path
            )))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{BATCH, sql};
    use crate::tree::sqlite::{OpenMode, SqliteStore};
    use crate::tree::{
        AccessType, InstanceKey, Node, NodeProps, Put, Scope, StoreError, Tree as _, TreeOp, Value,
    };

    #[test]
    fn statements_have_nine_parameters_a_row() {
        for rows in [1, 2, BATCH] {
            let sql = sql(rows);
            assert_eq!(sql.matches('?').count(), 9 * rows);
            assert_eq!(sql.matches("),(").count(), rows - 1);
        }
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).unwrap();
        (dir, s)
    }

    /// An instance root and `leaves` leaves `n0`, `n1`, …; `twice` repeats one name.
    fn nodes(leaves: usize, twice: Option<usize>) -> Vec<Node> {
        let mut v = vec![Node {
            path: String::new(),
            props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
            value: None,
        }];
        v.extend((0..leaves).map(|i| {
            let n = if twice == Some(i) { i - 1 } else { i };
            leaf(&format!("n{n}"), &format!("v{i}"))
        }));
        v
    }

    fn leaf(path: &str, text: &str) -> Node {
        let value = Value::Chr(text.into());
        Node {
            path: path.into(),
            props: NodeProps::leaf(value.format(), AccessType::GET, Scope::Dynamic),
            value: Some(value),
        }
    }

    fn put(key: &InstanceKey, nodes: Vec<Node>) -> TreeOp {
        TreeOp::PutInstance {
            key: key.clone(),
            ddf_url: None,
            creator: "local".into(),
            nodes,
        }
    }

    /// Whole batches, a remainder, and one short of a batch: every row arrives, whether
    /// the nodes come in one operation or streamed.
    #[test]
    fn every_row_arrives_in_batches_and_one_by_one() {
        let (_d, s) = store();
        for (i, leaves) in [3 * BATCH + 4, BATCH - 1, 2 * BATCH - 1]
            .into_iter()
            .enumerate()
        {
            let key = InstanceKey::new("urn:x:1.0", format!("put{i}"));
            s.apply(&[put(&key, nodes(leaves, None))]).unwrap();
            let streamed = InstanceKey::new("urn:x:1.0", format!("stream{i}"));
            s.apply_streamed(
                &mut |sink| {
                    sink.begin(&Put {
                        key: streamed.clone(),
                        path: String::new(),
                        ddf_url: None,
                        creator: "local".into(),
                        parent: None,
                    })?;
                    nodes(leaves, None)
                        .into_iter()
                        .try_for_each(|n| sink.node(n))
                },
                &[],
            )
            .unwrap();
            for k in [&key, &streamed] {
                let got = s.subtree(k, "", None).unwrap();
                assert_eq!(got.len(), leaves + 1, "{k}");
                let last = format!("n{}", leaves - 1);
                let value = got
                    .iter()
                    .find(|n| n.path == last)
                    .and_then(|n| n.value.clone());
                assert_eq!(value, Some(Value::Chr(format!("v{}", leaves - 1))), "{k}");
            }
        }
    }

    /// A name given twice inside a batch fails the write with that name, and nothing of it
    /// stays.
    #[test]
    fn a_node_listed_twice_inside_a_batch_is_named() {
        let (_d, s) = store();
        let key = InstanceKey::new("urn:x:1.0", "dup");
        let err = s.apply(&[put(&key, nodes(3 * BATCH, Some(BATCH + 5)))]);
        let want = format!("\"n{}\" listed twice", BATCH + 4);
        assert!(
            matches!(&err, Err(StoreError::Invalid(m)) if m.contains(&want)),
            "{err:?}"
        );
        assert_eq!(s.instance("urn:x:1.0", "dup").unwrap(), None);
    }

    /// A schema rule's refusal (migration v7: one SrvID per account) met inside a batch is
    /// reported as that rule, not as a node listed twice.
    #[test]
    fn a_schema_rule_inside_a_batch_keeps_its_message() {
        let (_d, s) = store();
        let dmacc = "urn:oma:mo:oma-dm-dmacc:1.2";
        let account = |miid: &str| {
            let mut v = nodes(2 * BATCH, None);
            v.insert(10, leaf("SrvID", "one"));
            put(&InstanceKey::new(dmacc, miid), v)
        };
        s.apply(&[account("a")]).unwrap();
        let err = s.apply(&[account("b")]);
        assert!(
            matches!(&err, Err(StoreError::Invalid(m)) if m.contains("SrvID is already used")),
            "{err:?}"
        );
        assert_eq!(s.instance(dmacc, "b").unwrap(), None);
    }
}
