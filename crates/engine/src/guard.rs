//! The order guard (`spec/security.md` TR-1).
