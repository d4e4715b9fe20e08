//! Outgoing mail.
//!
//! [`Mailer`] is the port the server sends through. [`SmtpMailer`] speaks SMTP with lettre (TLS by
//! rustls with aws-lc-rs, the project's one TLS stack); [`OutboxMailer`] writes each message as an
//! `.eml` file into a folder, which is the default so a newcomer needs no mail server. Message
//! bodies carry single-use links, so they are never logged.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// A plain-text message to one recipient.
#[derive(Clone)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body holds single-use links: it is never printed.
        f.debug_struct("OutgoingMail").field("to", &self.to).field("subject", &self.subject).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid mail configuration: {0}")]
    Config(String),
    #[error("invalid address or message: {0}")]
    Message(String),
    #[error("the mail server refused or could not be reached: {0}")]
    Transport(String),
    #[error("writing to the outbox failed: {0}")]
    Outbox(#[from] std::io::Error),
}

#[async_trait]
pub trait Mailer: Send + Sync + fmt::Debug {
    /// Delivers one message.
    ///
    /// # Errors
    /// `MailError` when the message cannot be built or delivered.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}

fn build(from: &Mailbox, mail: &OutgoingMail) -> Result<Message, MailError> {
    let to: Mailbox = mail.to.parse().map_err(|e: lettre::address::AddressError| MailError::Message(e.to_string()))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
        .map_err(|e| MailError::Message(e.to_string()))
}

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse().map_err(|e: lettre::address::AddressError| MailError::Config(format!("sender {from:?}: {e}")))
}

/// SMTP delivery. `smtp://host:port` is plain SMTP and is accepted only for a loopback host (a local
/// relay or a test sink); `smtp://...?tls=required` uses STARTTLS and `smtps://` implicit TLS.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    shown: String,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer").field("server", &self.shown).finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// # Errors
    /// `MailError::Config` when the URL does not parse, uses plain SMTP to a non-loopback host, or
    /// the sender address is invalid.
    pub fn new(url: &str, from: &str) -> Result<SmtpMailer, MailError> {
        let parsed = url::Url::parse(url).map_err(|e| MailError::Config(format!("BULWARK_SMTP_URL: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let tls = parsed.scheme() == "smtps" || parsed.query_pairs().any(|(k, v)| k == "tls" && v != "none");
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            return Err(MailError::Config("BULWARK_SMTP_URL must start with smtp:// or smtps://".to_owned()));
        }
        if !tls && !loopback {
            return Err(MailError::Config(
                "plain smtp:// is only allowed to a loopback host; use smtps:// or ?tls=required".to_owned(),
            ));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Config(format!("BULWARK_SMTP_URL: {e}")))?
            .build();
        // Shown in logs: scheme, host and port only, never the credentials.
        let shown = format!("{}://{}:{}", parsed.scheme(), host, parsed.port().unwrap_or(if tls { 465 } else { 25 }));
        Ok(SmtpMailer { transport, from: parse_from(from)?, shown })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        self.transport.send(message).await.map_err(|e| MailError::Transport(e.to_string()))?;
        tracing::info!(server = %self.shown, subject = %mail.subject, "mail sent");
        Ok(())
    }
}

/// Writes each message as `<unix-millis>-<uuid>.eml` into a folder instead of sending it.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    /// # Errors
    /// `MailError::Config` for an invalid sender.
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Result<OutboxMailer, MailError> {
        Ok(OutboxMailer { dir: dir.into(), from: parse_from(from)? })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        tokio::fs::create_dir_all(&self.dir).await?;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let path = self.dir.join(format!("{millis}-{}.eml", uuid::Uuid::new_v4()));
        // Written to a temporary name and renamed, so a reader never sees half a message.
        let partial = path.with_extension("eml.partial");
        tokio::fs::write(&partial, message.formatted()).await?;
        tokio::fs::rename(&partial, &path).await?;
        tracing::info!(path = %path.display(), subject = %mail.subject, "mail written to the outbox");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to: "alice@example.com".into(),
            subject: "Hello".into(),
            text: "link: https://x/?token=SECRET".into(),
        }
    }

    #[tokio::test]
    async fn outbox_writes_one_eml_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = OutboxMailer::new(dir.path().join("outbox"), "Bulwark <no-reply@bulwark.localhost>").unwrap();
        outbox.send(&mail()).await.unwrap();
        outbox.send(&mail()).await.unwrap();
        let mut files: Vec<_> = std::fs::read_dir(outbox.dir()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|p| p.extension().is_some_and(|e| e == "eml")));
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("To: alice@example.com"), "{text}");
        assert!(text.contains("Subject: Hello"));
        assert!(text.contains("token=SECRET"));
    }

    #[test]
    fn plain_smtp_only_to_loopback() {
        let from = "no-reply@bulwark.localhost";
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", from).is_ok());
        assert!(SmtpMailer::new("smtp://localhost:2525", from).is_ok());
        assert!(SmtpMailer::new("smtp://[::1]:2525", from).is_ok());
        assert!(matches!(SmtpMailer::new("smtp://mail.example.com:25", from), Err(MailError::Config(_))));
        assert!(SmtpMailer::new("smtp://mail.example.com:587?tls=required", from).is_ok());
        assert!(SmtpMailer::new("smtps://user:pass@mail.example.com:465", from).is_ok());
        assert!(matches!(SmtpMailer::new("http://mail.example.com", from), Err(MailError::Config(_))));
    }

    #[test]
    fn debug_hides_body_and_credentials() {
        assert!(!format!("{:?}", mail()).contains("SECRET"));
        let smtp = SmtpMailer::new("smtps://user:hunter2@mail.example.com:465", "a@b.co").unwrap();
        assert!(!format!("{smtp:?}").contains("hunter2"));
    }
}
