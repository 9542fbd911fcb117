//! Node paths: what a stored node name may be, and how paths join and split.

/// True when `name` can be stored as a node name.
///
/// TS §6.3.1 limits names to `1*unreserved`, but the DACMO (TS §12.3) names nodes after
/// MOIDs, which contain `:`. The store therefore only requires what its path scheme needs:
/// not empty, no `/`, no control characters, not `.` or `..`. The ClientURI parser applies
/// the TS's stricter rule to what servers address.
pub fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && if name.is_ascii() {
            // The common case, byte by byte: it runs twice for every node an HGET stores.
            !name.bytes().any(|b| b == b'/' || b.is_ascii_control())
        } else {
            !name.chars().any(|c| c == '/' || c.is_control())
        }
}

/// A node path's parent path and name (`None` for the root), in one split.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    match path.rsplit_once('/') {
        Some(split) => Some(split),
        None if path.is_empty() => None,
        None => Some(("", path)),
    }
}

/// The parent path of a node path (`None` for the root).
pub fn parent_path(path: &str) -> Option<&str> {
    split_path(path).map(|(parent, _)| parent)
}

/// Joins a parent path and a child name.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        return name.to_owned();
    }
    // Not `format!`: this runs once per node a large HGET stores (docs/performance.md).
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    path.push('/');
    path.push_str(name);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        let cases = [
            ("a", true),
            ("Ext", true),
            ("urn:oma:mo:oma-dm-dacmo:1.0", true),
            ("caf\u{e9}", true),
            ("", false),
            (".", false),
            ("..", false),
            ("...", true),
            ("a/b", false),
            ("a\nb", false),
            ("a\u{7f}", false),
            // C1 controls and a slash after a non-ASCII character take the other path.
            ("\u{e9}\u{85}", false),
            ("\u{e9}/x", false),
        ];
        for (name, ok) in cases {
            assert_eq!(is_node_name(name), ok, "{name:?}");
        }
    }

    #[test]
    fn paths_join_and_split() {
        let cases = [("", "a", "a"), ("a", "b", "a/b"), ("a/b", "c", "a/b/c")];
        for (parent, name, path) in cases {
            assert_eq!(child_path(parent, name), path);
            assert_eq!(parent_path(path), Some(parent));
            assert_eq!(split_path(path), Some((parent, name)));
        }
        assert_eq!(parent_path(""), None);
        assert_eq!(split_path(""), None);
    }
}
