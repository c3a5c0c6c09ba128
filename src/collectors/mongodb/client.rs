//! MongoDB I/O (being written).
