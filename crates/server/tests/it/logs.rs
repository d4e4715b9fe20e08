//! Captures every log line the app writes during the tests, at TRACE, so tests can assert that no
//! secret ever reaches a log (SEC-5-style canary checks).

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static CAPTURED: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

fn buffer() -> &'static Mutex<Vec<u8>> {
    CAPTURED.get_or_init(|| Mutex::new(Vec::new()))
}

#[derive(Clone, Copy)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        buffer().lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| Capture)
            .with_ansi(false)
            .try_init();
    });
}

/// Everything logged so far by any test in this binary.
pub fn captured() -> String {
    String::from_utf8_lossy(&buffer().lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
}
