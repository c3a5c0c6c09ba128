//! `dbStats` per database: object counts and sizes labelled `{db}`, plus the
//! size of the filesystem holding the data files.
//!
//! `fsUsedSize`/`fsTotalSize` describe the filesystem under `dbPath`, not the
//! database, so every database on a node reports the same pair. Exporting them
//! per `db` would make `sum()` over the family count the disk once per database.
//! They are therefore exported **once per target, without a `db` label**
//! (`mongodb_fs_used_bytes`, `mongodb_fs_total_bytes`), taken from the first
//! database in the slice that reports both (the client lists databases in
//! name order, so the choice is stable between scrapes). The disk alert is
//! then simply `mongodb_fs_used_bytes / mongodb_fs_total_bytes > 0.9`.
//! (With `--directoryperdb` and one mount per database the per-database
//! figures could differ; that layout is not used here, and the first one wins.)
//!
//! Sizes are exported in bytes: when the reply was scaled (`scaleFactor` > 1)
//! the values are multiplied back. A field that is missing, of the wrong type,
//! negative or not finite is absent from the output.

use std::borrow::Cow;

use mongodb::bson::Document;

use super::bson_num::{count_at, Num};
use super::oplog::scale_factor;
use crate::metrics::{BaseUnit, Desc, Exposition, Label};

/// Longest database name MongoDB accepts is 63 bytes; anything longer is cut.
const MAX_DB_LABEL_BYTES: usize = 64;

const COLLECTIONS: Desc =
    Desc::gauge("mongodb_db_collections", "Number of collections in the database, from dbStats collections.")
        .labels(&["db"]);
const VIEWS: Desc =
    Desc::gauge("mongodb_db_views", "Number of views in the database, from dbStats views.").labels(&["db"]);
const OBJECTS: Desc =
    Desc::gauge("mongodb_db_objects", "Number of documents in the database, from dbStats objects.").labels(&["db"]);
const DATA_SIZE: Desc = Desc::gauge(
    "mongodb_db_data_size_bytes",
    "Uncompressed size of the documents in the database, from dbStats dataSize.",
)
.unit(BaseUnit::Bytes)
.labels(&["db"]);
const STORAGE_SIZE: Desc = Desc::gauge(
    "mongodb_db_storage_size_bytes",
    "Disk space allocated to the database's collections (compressed, including free space), from dbStats storageSize.",
)
.unit(BaseUnit::Bytes)
.labels(&["db"]);
const INDEXES: Desc =
    Desc::gauge("mongodb_db_indexes", "Number of indexes in the database, from dbStats indexes.").labels(&["db"]);
const INDEX_SIZE: Desc = Desc::gauge(
    "mongodb_db_index_size_bytes",
    "Disk space allocated to the database's indexes, from dbStats indexSize.",
)
.unit(BaseUnit::Bytes)
.labels(&["db"]);
const TOTAL_SIZE: Desc = Desc::gauge(
    "mongodb_db_total_size_bytes",
    "Disk space allocated to the database's collections and indexes, from dbStats totalSize (4.4+).",
)
.unit(BaseUnit::Bytes)
.labels(&["db"]);
const FS_USED: Desc = Desc::gauge(
    "mongodb_fs_used_bytes",
    "Space used on the filesystem that holds the data files, from dbStats fsUsedSize (once per target).",
)
.unit(BaseUnit::Bytes);
const FS_TOTAL: Desc = Desc::gauge(
    "mongodb_fs_total_bytes",
    "Total size of the filesystem that holds the data files, from dbStats fsTotalSize (once per target).",
)
.unit(BaseUnit::Bytes);

const ALL: [&Desc; 10] = [
    &COLLECTIONS,
    &VIEWS,
    &OBJECTS,
    &DATA_SIZE,
    &STORAGE_SIZE,
    &INDEXES,
    &INDEX_SIZE,
    &TOTAL_SIZE,
    &FS_USED,
    &FS_TOTAL,
];

/// The parts of one database's `dbStats` reply the exporter uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DbStats {
    pub db: String,
    pub collections: Option<Num>,
    pub views: Option<Num>,
    pub objects: Option<Num>,
    pub data_size_bytes: Option<Num>,
    pub storage_size_bytes: Option<Num>,
    pub indexes: Option<Num>,
    pub index_size_bytes: Option<Num>,
    pub total_size_bytes: Option<Num>,
    pub fs_used_bytes: Option<Num>,
    pub fs_total_bytes: Option<Num>,
}

/// Reads the `dbStats` reply of database `db`. Never fails; an error reply
/// (`ok: 0`) simply has no fields.
pub fn parse(db: &str, doc: &Document) -> DbStats {
    let count = |key: &str| count_at(doc, key);
    let scale = scale_factor(doc);
    let bytes = |key: &str| count(key).map(|v| v.times(scale));
    DbStats {
        db: bounded_db(db),
        collections: count("collections"),
        views: count("views"),
        objects: count("objects"),
        data_size_bytes: bytes("dataSize"),
        storage_size_bytes: bytes("storageSize"),
        indexes: count("indexes"),
        index_size_bytes: bytes("indexSize"),
        total_size_bytes: bytes("totalSize"),
        fs_used_bytes: bytes("fsUsedSize"),
        // A zero-sized filesystem would make the usage ratio divide by zero.
        fs_total_bytes: bytes("fsTotalSize").filter(|v| v.as_f64() > 0.0),
    }
}

fn bounded_db(db: &str) -> String {
    let mut end = db.len().min(MAX_DB_LABEL_BYTES);
    while !db.is_char_boundary(end) {
        end -= 1;
    }
    db[..end].to_owned()
}

/// Emits the per-database families and the filesystem pair once.
pub fn encode(stats: &[DbStats], out: &mut Exposition) {
    for s in stats {
        let labels = || -> Vec<Label> { vec![("db", Cow::Owned(s.db.clone()))] };
        let pairs = [
            (&COLLECTIONS, s.collections),
            (&VIEWS, s.views),
            (&OBJECTS, s.objects),
            (&DATA_SIZE, s.data_size_bytes),
            (&STORAGE_SIZE, s.storage_size_bytes),
            (&INDEXES, s.indexes),
            (&INDEX_SIZE, s.index_size_bytes),
            (&TOTAL_SIZE, s.total_size_bytes),
        ];
        for (desc, value) in pairs {
            if let Some(v) = value {
                out.add(desc, labels(), v);
            }
        }
    }
    if let Some((used, total)) = stats.iter().find_map(|s| Some((s.fs_used_bytes?, s.fs_total_bytes?))) {
        out.add_plain(&FS_USED, used);
        out.add_plain(&FS_TOTAL, total);
    }
}

/// Every descriptor this module can emit.
pub fn descriptors() -> Vec<&'static Desc> {
    ALL.to_vec()
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn scaled_reply_is_converted_back_to_bytes() {
        let s = parse("app", &doc! {"dataSize": 2.0, "scaleFactor": 1024, "objects": 7, "fsTotalSize": 0});
        assert_eq!(s.data_size_bytes, Some(Num::Int(2048)));
        assert_eq!(s.objects, Some(Num::Int(7)), "counts are not scaled");
        assert_eq!(s.fs_total_bytes, None, "zero-sized filesystem is absent");
    }

    #[test]
    fn descriptors_are_well_formed() {
        assert!(descriptors().iter().all(|d| d.is_well_formed()));
    }
}
