//! Row keys of the raw files: the optional `id` column ([`crate::schema::ID`]) or, in a file
//! without one, the row number.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

/// How the rows of a raw file are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyedBy {
    /// By the file's `id` column.
    Id,
    /// By the 1-based row number: a file without `id` (written before ids existed).
    RowNumber,
}

impl KeyedBy {
    /// `id` or `row_number`, as `provenance.json` records it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyedBy::Id => "id",
            KeyedBy::RowNumber => "row_number",
        }
    }
}

/// Rows of a raw file with their ids: `ids` is the file's `id` column, one per row, or
/// `None` for a file without one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keyed<T> {
    pub ids: Option<Vec<String>>,
    pub rows: T,
}

impl<T> Keyed<T> {
    pub fn keyed_by(&self) -> KeyedBy {
        if self.ids.is_some() {
            KeyedBy::Id
        } else {
            KeyedBy::RowNumber
        }
    }
}

/// The keys of consecutive rows, for a writer: the rows' ids, or their row numbers counting
/// from `first` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKeys<'a> {
    Ids(&'a [String]),
    RowNumbers { first: usize },
}

/// Remembers the ids of one file as they are read, to find one given twice.
///
/// While every id is greater than the one before (as in the files `ml-generate` writes),
/// none can repeat, and only the last one is kept. From the first id out of
/// that order on, it keeps a 64-bit fingerprint of each id rather than the id itself:
/// 8 bytes a row plus the set's slack (about 40 kB for a day of a few thousand rows, some
/// 20 MB for a million), so the streaming reader stays small on a large file. The reader
/// then fills the set with the ids before that row, read again from the file
/// ([`IdSet::add_earlier`]). A fingerprint seen before means "maybe a duplicate": the reader
/// looks for an earlier row with the same text, which tells a real duplicate from two ids
/// that only share a fingerprint.
#[derive(Debug, Default)]
pub(crate) struct IdSet {
    /// The last id, while the ids ascend; `None` once they no longer do.
    ascending: Option<String>,
    seen: HashSet<u64>,
    // Random keys per process: no input can be made to collide on purpose.
    fingerprint: RandomState,
}

/// What [`IdSet::insert`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Not seen before.
    New,
    /// An id with the same fingerprint was seen before: maybe this one.
    Maybe,
    /// The first id out of ascending order: the set must be filled with the earlier ids
    /// ([`IdSet::add_earlier`]) and this one inserted again.
    OutOfOrder,
}

impl IdSet {
    pub(crate) fn new() -> Self {
        // Ids are never empty, so the first is always greater than "".
        IdSet {
            ascending: Some(String::new()),
            ..IdSet::default()
        }
    }

    pub(crate) fn insert(&mut self, id: &str) -> Insert {
        if let Some(last) = self.ascending.as_mut() {
            if id > last.as_str() {
                last.clear();
                last.push_str(id);
                return Insert::New;
            }
            self.ascending = None;
            return Insert::OutOfOrder;
        }
        if self.seen.insert(self.fingerprint.hash_one(id)) {
            Insert::New
        } else {
            Insert::Maybe
        }
    }

    /// Adds an id of an earlier row, after [`Insert::OutOfOrder`].
    pub(crate) fn add_earlier(&mut self, id: &str) {
        self.seen.insert(self.fingerprint.hash_one(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascending_ids_need_no_set_and_a_repeat_is_noticed_after() {
        let mut set = IdSet::new();
        assert_eq!(set.insert("2026-01-05-000001"), Insert::New);
        assert_eq!(set.insert("2026-01-05-000002"), Insert::New);
        assert!(set.seen.is_empty());
        assert_eq!(set.insert("2026-01-05-000001"), Insert::OutOfOrder);
        set.add_earlier("2026-01-05-000001");
        set.add_earlier("2026-01-05-000002");
        assert_eq!(set.insert("2026-01-05-000001"), Insert::Maybe);
        assert_eq!(set.insert("2026-01-05-000000"), Insert::New);
        assert_eq!(set.insert("2026-01-05-000002"), Insert::Maybe);
        assert_eq!(KeyedBy::Id.as_str(), "id");
        assert_eq!(
            Keyed {
                ids: None,
                rows: ()
            }
            .keyed_by()
            .as_str(),
            "row_number"
        );
    }
}
