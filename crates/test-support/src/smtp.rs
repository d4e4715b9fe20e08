//! A small SMTP server on loopback that accepts every message and keeps it, so integration tests
//! exercise the real SMTP client over a real socket and read links out of what arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The whole message as sent (headers and body), with dot-stuffing undone.
    pub data: String,
}

impl ReceivedMail {
    pub fn subject(&self) -> &str {
        self.data.lines().find_map(|line| line.strip_prefix("Subject: ")).unwrap_or("")
    }

    /// The body (after the headers), with quoted-printable soft line breaks and `=3D` undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        body.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The first link in the body that starts with `prefix`, with quoted-printable soft line
    /// breaks undone.
    pub fn link(&self, prefix: &str) -> Option<String> {
        let body = self.data.replace("=\r\n", "").replace("=3D", "=");
        let start = body.find(prefix)?;
        let rest = &body[start..];
        let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

#[derive(Debug, Clone)]
pub struct SmtpSink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1 on a free port.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
        let sink = SmtpSink {
            addr: listener.local_addr().expect("sink address"),
            received: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        let accepting = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let sink = accepting.clone();
                tokio::spawn(async move {
                    let _ = sink.session(socket).await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn all(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Messages to `to` received so far.
    pub fn to(&self, to: &str) -> Vec<ReceivedMail> {
        self.all().into_iter().filter(|m| m.to.iter().any(|r| r.eq_ignore_ascii_case(to))).collect()
    }

    /// Waits until `count` messages to `to` have arrived and returns them, or panics after 10 s.
    ///
    /// # Panics
    /// When the messages do not arrive in time.
    pub async fn wait_for(&self, to: &str, count: usize) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            let got = self.to(to);
            if got.len() >= count {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {count} mail(s) to {to}, got {}: {:?}",
                    got.len(),
                    got.iter().map(ReceivedMail::subject).collect::<Vec<_>>()
                );
            }
        }
    }

    async fn session(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink.localhost ESMTP test sink\r\n").await?;
        let mut from = String::new();
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let upper = command.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                write.write_all(b"250 sink.localhost\r\n").await?;
            } else if upper.starts_with("MAIL FROM:") {
                from = angle(&command);
                to.clear();
                write.write_all(b"250 OK\r\n").await?;
            } else if upper.starts_with("RCPT TO:") {
                to.push(angle(&command));
                write.write_all(b"250 OK\r\n").await?;
            } else if upper == "DATA" {
                write.write_all(b"354 end with .\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(ReceivedMail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
                self.arrived.notify_waiters();
                write.write_all(b"250 queued\r\n").await?;
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else if upper == "RSET" || upper == "NOOP" {
                write.write_all(b"250 OK\r\n").await?;
            } else {
                write.write_all(b"502 not implemented\r\n").await?;
            }
        }
    }
}

fn angle(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command.rfind('>').unwrap_or(command.len());
    command.get(start..end).unwrap_or("").to_owned()
}
