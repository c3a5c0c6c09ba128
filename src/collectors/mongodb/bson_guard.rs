//! Limits on what a MongoDB reply may look like before anything recursive
//! touches it.
//!
//! Why: `bson::Document` is a recursive type. Converting raw bytes into one,
//! cloning it, walking it and even dropping it use one stack frame (or more)
//! per nesting level, so a reply with a subdocument nested 20,000 levels deep
//! (160 kB) overflows a thread's stack and aborts the whole process, taking
//! every target down with it. A real `mongod` refuses to store documents
//! nested deeper than 100 levels, so a reply nested deeper than
//! [`MAX_DEPTH`] comes from a hostile or broken peer and is rejected.
//!
//! Everything here is iterative (explicit stacks, no recursion), so these
//! checks are safe on any input; only after [`check_raw`] accepted the bytes
//! is the reply converted into a `Document` (whose recursion is then bounded
//! by [`MAX_DEPTH`]).
//!
//! Two layers, because the driver decodes some replies itself:
//! - Cursor commands (`find`, `aggregate`, `listCollections`) are read as raw
//!   documents (`client::read_cursor`) and each one is checked here before it
//!   is decoded.
//! - Replies the driver decodes (non-cursor commands such as `serverStatus`,
//!   its own `hello`, error bodies) are checked inside the driver, at the wire
//!   layer, by the same iterative walk (`vendor/mongodb`, see
//!   `vendor/README.md`), with a limit of `MAX_DEPTH + 8`; the exporter then
//!   checks the decoded reply against [`MAX_DEPTH`] ([`check_document`]) and
//!   takes a refused one apart without recursion.
//!
//! Byte and document caps ([`MAX_REPLY_BYTES`], [`CursorCaps`]) bound the
//! memory one cursor can take, whatever the server does with `limit` or
//! `batchSize`. One reply message is still read whole by the driver first (up
//! to the server's `maxMessageSizeBytes`, 48 MB by default); the caps make sure
//! no more than that is ever decoded or kept.

use mongodb::bson::{Bson, Document, RawBsonRef, RawDocument};

/// Deepest nesting accepted, counting the reply itself as level 1.
///
/// MongoDB refuses to store documents nested deeper than 100 levels; a command
/// reply adds a few levels of its own around stored documents (for example
/// `cursor.firstBatch.<n>` puts a profiler entry at level 4, and the entry's
/// `command` field embeds an application command). 128 leaves that headroom
/// and still keeps the recursive conversion that follows a few dozen kB of
/// stack at most.
pub const MAX_DEPTH: usize = 128;

/// Largest sum of documents decoded from one cursor, in bytes. What we read is
/// far smaller: `serverStatus` of a busy node is ~100 kB, `replSetGetStatus` of
/// a 50-member set ~60 kB, a profiler batch of 1,000 projected entries well
/// under 1 MiB. The wire protocol allows 48 MB messages; 8 MiB keeps the
/// decoded copy (several times the byte size) far below the shipped unit's
/// `MemoryMax=128M`.
pub const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// Why a reply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("reply nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("reply larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("malformed BSON in reply")]
    Malformed,
}

/// Checks raw BSON bytes (one document) without recursion: every element is
/// visited once; the document is refused when it nests deeper than
/// `max_depth`, is larger than `max_bytes`, or does not parse. Returns the
/// deepest level seen.
pub fn check_raw(bytes: &[u8], max_depth: usize, max_bytes: usize) -> Result<usize, GuardError> {
    if bytes.len() > max_bytes {
        return Err(GuardError::TooLarge { limit: max_bytes });
    }
    let root = RawDocument::from_bytes(bytes).map_err(|_| GuardError::Malformed)?;
    check_raw_document(root, max_depth)
}

/// [`check_raw`] for an already framed document (no byte cap).
pub fn check_raw_document(root: &RawDocument, max_depth: usize) -> Result<usize, GuardError> {
    if max_depth == 0 {
        return Err(GuardError::TooDeep { limit: max_depth });
    }
    // One iterator per open level: the stack lives on the heap, never the call stack.
    let mut stack = vec![root.iter()];
    let mut deepest = 1;
    while let Some(top) = stack.last_mut() {
        let Some(element) = top.next() else {
            stack.pop();
            continue;
        };
        let (_, value) = element.map_err(|_| GuardError::Malformed)?;
        let child = match value {
            RawBsonRef::Document(d) => Some(d),
            // An array is a document whose keys are "0", "1", ...
            RawBsonRef::Array(a) => Some(RawDocument::from_bytes(a.as_bytes()).map_err(|_| GuardError::Malformed)?),
            RawBsonRef::JavaScriptCodeWithScope(c) => Some(c.scope),
            _ => None,
        };
        if let Some(child) = child {
            if stack.len() >= max_depth {
                return Err(GuardError::TooDeep { limit: max_depth });
            }
            stack.push(child.iter());
            deepest = deepest.max(stack.len());
        }
    }
    Ok(deepest)
}

/// Converts a raw document into a `Document` once [`check_raw_document`]
/// accepted it (so the conversion's recursion is bounded by `max_depth`).
pub fn to_document(raw: &RawDocument, max_depth: usize) -> Result<Document, GuardError> {
    check_raw_document(raw, max_depth)?;
    Document::try_from(raw).map_err(|_| GuardError::Malformed)
}

/// The nesting depth of a decoded document, without recursion (the document
/// itself is level 1).
pub fn document_depth(doc: &Document) -> usize {
    let mut stack: Vec<(usize, &Bson)> = doc.values().map(|v| (2, v)).collect();
    let mut deepest = 1;
    while let Some((level, value)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Bson>> = match value {
            Bson::Document(d) => Box::new(d.values()),
            Bson::Array(a) => Box::new(a.iter()),
            Bson::JavaScriptCodeWithScope(c) => Box::new(c.scope.values()),
            _ => continue,
        };
        deepest = deepest.max(level);
        stack.extend(children.map(|v| (level + 1, v)));
    }
    deepest
}

/// Checks a reply the driver already decoded (commands that have no raw
/// API): too deep a document is taken apart without recursion, so neither its
/// parsing nor its `Drop` can exhaust the stack.
pub fn check_document(doc: Document, max_depth: usize) -> Result<Document, GuardError> {
    if document_depth(&doc) > max_depth {
        drop_iteratively(doc);
        return Err(GuardError::TooDeep { limit: max_depth });
    }
    Ok(doc)
}

/// Drops a document of any depth without recursion: nested containers are
/// moved out onto a heap stack first, so each one is dropped empty.
pub fn drop_iteratively(doc: Document) {
    let mut stack: Vec<Bson> = vec![Bson::Document(doc)];
    while let Some(value) = stack.pop() {
        match value {
            Bson::Document(mut d) => {
                let keys: Vec<String> = d.keys().cloned().collect();
                for key in keys {
                    if let Some(v) = d.remove(&key) {
                        stack.push(v);
                    }
                }
            }
            Bson::Array(mut a) => stack.append(&mut a),
            Bson::JavaScriptCodeWithScope(c) => stack.push(Bson::Document(c.scope)),
            _ => {}
        }
    }
}

/// How much of a cursor is read at most, whatever the server does with
/// `limit` and `batchSize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorCaps {
    pub max_docs: usize,
    pub max_bytes: usize,
    pub max_depth: usize,
}

impl CursorCaps {
    pub fn docs(max_docs: usize) -> Self {
        CursorCaps { max_docs, max_bytes: MAX_REPLY_BYTES, max_depth: MAX_DEPTH }
    }
}

/// Documents read from a cursor, and whether the caps cut it short.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub docs: Vec<Document>,
    /// More documents were on offer than [`CursorCaps`] allow.
    pub truncated: bool,
    pub bytes: usize,
}

/// Accumulates cursor documents under [`CursorCaps`] (the I/O-free half of a
/// bounded cursor read, so it can be tested without a server).
#[derive(Debug)]
pub struct BatchBuilder {
    caps: CursorCaps,
    batch: Batch,
}

impl BatchBuilder {
    pub fn new(caps: CursorCaps) -> Self {
        BatchBuilder { caps, batch: Batch::default() }
    }

    /// Offers one raw document. `Ok(true)`: take more; `Ok(false)`: a cap was
    /// reached (the batch is marked truncated, stop reading); `Err`: the
    /// document is too deep or malformed (the whole read fails).
    pub fn offer(&mut self, raw: &RawDocument) -> Result<bool, GuardError> {
        let size = raw.as_bytes().len();
        if self.batch.docs.len() >= self.caps.max_docs || self.batch.bytes.saturating_add(size) > self.caps.max_bytes {
            self.batch.truncated = true;
            return Ok(false);
        }
        let doc = to_document(raw, self.caps.max_depth)?;
        self.batch.bytes += size;
        self.batch.docs.push(doc);
        Ok(true)
    }

    pub fn finish(self) -> Batch {
        self.batch
    }
}

/// Builds raw BSON bytes of `{"a": {"a": ... {}}}` nested `depth` levels
/// (the outer document counts as level 1), iteratively. For tests and fuzzing.
pub fn nested_bytes(depth: usize) -> Vec<u8> {
    let depth = depth.max(1);
    // Each level but the innermost: int32 length, type 0x03, key "a\0", child, 0x00.
    let inner_levels = depth - 1;
    let total = 5 + inner_levels * 8;
    let mut out = Vec::with_capacity(total);
    for level in 0..inner_levels {
        let len = (total - level * 8) as i32;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&[0x03, b'a', 0]);
    }
    out.extend_from_slice(&5i32.to_le_bytes());
    out.push(0);
    out.extend(std::iter::repeat_n(0u8, inner_levels));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn nested_bytes_are_valid_bson_of_that_depth() {
        for depth in [1, 2, 3, 10, MAX_DEPTH] {
            let bytes = nested_bytes(depth);
            assert_eq!(check_raw(&bytes, usize::MAX, usize::MAX), Ok(depth));
            let doc = to_document(RawDocument::from_bytes(&bytes).expect("valid"), MAX_DEPTH).expect("within limit");
            assert_eq!(document_depth(&doc), depth);
        }
    }

    #[test]
    fn deep_documents_are_refused_without_recursion() {
        // 200,000 levels would need megabytes of stack if walked recursively.
        let bytes = nested_bytes(200_000);
        assert_eq!(check_raw(&bytes, MAX_DEPTH, usize::MAX), Err(GuardError::TooDeep { limit: MAX_DEPTH }));
        assert_eq!(
            check_raw(&nested_bytes(MAX_DEPTH + 1), MAX_DEPTH, usize::MAX),
            Err(GuardError::TooDeep { limit: MAX_DEPTH })
        );
        assert_eq!(check_raw(&nested_bytes(MAX_DEPTH), MAX_DEPTH, usize::MAX), Ok(MAX_DEPTH));
    }

    #[test]
    fn arrays_and_code_with_scope_count_as_levels() {
        let d = doc! {"a": [[{"b": 1}]]};
        let bytes = mongodb::bson::to_vec(&d).expect("serializes");
        assert_eq!(check_raw(&bytes, 10, usize::MAX), Ok(4));
        assert_eq!(check_raw(&bytes, 3, usize::MAX), Err(GuardError::TooDeep { limit: 3 }));
        assert_eq!(document_depth(&d), 4);
    }

    #[test]
    fn size_and_malformed_input_are_refused() {
        let bytes = nested_bytes(3);
        assert_eq!(check_raw(&bytes, 10, bytes.len() - 1), Err(GuardError::TooLarge { limit: bytes.len() - 1 }));
        assert_eq!(check_raw(&bytes[..bytes.len() - 1], 10, usize::MAX), Err(GuardError::Malformed));
        assert_eq!(check_raw(&[], 10, usize::MAX), Err(GuardError::Malformed));
    }

    #[test]
    fn decoded_deep_documents_are_dropped_without_recursion() {
        // Build a deep Document iteratively (its conversion from bytes would recurse).
        let mut doc = Document::new();
        for _ in 0..100_000 {
            let mut outer = Document::new();
            outer.insert("a", doc);
            doc = outer;
        }
        assert_eq!(check_document(doc, MAX_DEPTH), Err(GuardError::TooDeep { limit: MAX_DEPTH }));
        assert!(check_document(doc! {"a": {"b": 1}}, MAX_DEPTH).is_ok());
    }

    #[test]
    fn batches_stop_at_the_document_and_byte_caps() {
        let one = mongodb::bson::to_vec(&doc! {"x": 1}).expect("serializes");
        let raw = RawDocument::from_bytes(&one).expect("valid");
        let mut b = BatchBuilder::new(CursorCaps { max_docs: 2, max_bytes: usize::MAX, max_depth: 10 });
        assert_eq!(b.offer(raw), Ok(true));
        assert_eq!(b.offer(raw), Ok(true));
        assert_eq!(b.offer(raw), Ok(false));
        let batch = b.finish();
        assert_eq!(batch.docs.len(), 2);
        assert!(batch.truncated);
        let mut b = BatchBuilder::new(CursorCaps { max_docs: 100, max_bytes: one.len() * 3, max_depth: 10 });
        while b.offer(raw) == Ok(true) {}
        assert_eq!(b.finish().docs.len(), 3);
        let deep = nested_bytes(11);
        let mut b = BatchBuilder::new(CursorCaps { max_docs: 100, max_bytes: usize::MAX, max_depth: 10 });
        assert_eq!(b.offer(RawDocument::from_bytes(&deep).expect("valid")), Err(GuardError::TooDeep { limit: 10 }));
    }
}
