//! Email notifications over SMTP (cargo feature `smtp`), through `lettre`'s blocking transport:
//! the dispatcher calls adapters off the async threads.

use super::{Notification, Notifier, Recipient};
use anyhow::Context;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};

/// Sends each notification as a plain-text email.
pub struct SmtpNotifier {
    transport: SmtpTransport,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds credentials: never print it.
        f.debug_struct("SmtpNotifier")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpNotifier {
    /// A notifier for `url` (`smtps://user:pass@host`, `smtp://host:25?tls=required`, ...)
    /// sending from `from` (`Name <address>` or an address).
    pub fn new(url: &str, from: &str) -> anyhow::Result<SmtpNotifier> {
        Ok(SmtpNotifier {
            transport: SmtpTransport::from_url(url).context("parsing the SMTP URL")?.build(),
            from: from.parse().context("parsing the sender address")?,
        })
    }
}

impl Notifier for SmtpNotifier {
    fn deliver(&self, n: &Notification, to: &Recipient) -> anyhow::Result<()> {
        let mailbox = Mailbox::new(Some(to.name.clone()), to.email.parse().context("recipient address")?);
        let email = Message::builder()
            .from(self.from.clone())
            .to(mailbox)
            .subject(n.subject.clone())
            .body(n.message.clone())
            .context("building the email")?;
        self.transport.send(&email).context("sending the email")?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_url_and_refuses_bad_senders() {
        assert!(SmtpNotifier::new("smtp://localhost:2525", "EVCS <noreply@evcs.local>").is_ok());
        assert!(SmtpNotifier::new("smtp://localhost:2525", "not an address").is_err());
        assert!(SmtpNotifier::new("nonsense", "noreply@evcs.local").is_err());
        let n = SmtpNotifier::new("smtps://user:secret@mail.example.com", "noreply@evcs.local").unwrap();
        assert!(!format!("{n:?}").contains("secret"));
    }
}
