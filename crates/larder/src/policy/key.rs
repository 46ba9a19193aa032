//! Cache keys and Vary (RFC 9111 §4.1), as DESIGN.md lays them out.
