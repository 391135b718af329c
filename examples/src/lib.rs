//! Examples live in this folder.
