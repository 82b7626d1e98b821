//! The mail folder: without SMTP, each mail is written whole to a folder as one `.eml` file
//! (the zero-setup mode's `.latchkey/mail`, or `LATCHKEY_MAIL_DIR`), where `latchkey mail`
//! lists them with their links and any mail program opens them. The files carry live links
//! and codes: the folder is made private to the server's user (0700) and each file is 0600.
//! Only the newest [`KEEP`] messages are kept, so a stream of sign-ups cannot fill the disk.

mod listing;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;
use lettre::message::Mailbox;
use tokio::io::AsyncWriteExt;

use super::{Email, MailError, Mailer, message, recipient_domain};
pub use listing::{StoredMail, describe, recent};

/// How many messages the folder keeps; older ones are deleted as new ones arrive.
pub const KEEP: usize = 500;

#[derive(Debug)]
pub struct FolderMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FolderMailer {
    /// Creates the folder (mode 0700) if it is missing. An existing folder keeps its mode;
    /// a warning says when others can list it (the files themselves are 0600).
    pub fn open(dir: &Path, from: Mailbox) -> anyhow::Result<FolderMailer> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the mail folder {}", dir.display()))?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                folder = %dir.display(),
                mode = %format!("{:o}", mode & 0o777),
                "others may list the mail folder (each mail is readable only by this user)"
            );
        }
        tracing::info!(folder = %dir.display(), "no SMTP host configured: every mail is written to the mail folder");
        Ok(FolderMailer {
            dir: dir.to_owned(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for FolderMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let formatted = message::build(&self.from, email)?.formatted();
        let path = self.dir.join(file_name(email));
        write_private(&path, &formatted)
            .await
            .map_err(|err| MailError(format!("writing {}: {err}", path.display())))?;
        // The file name holds the time and the kind, never the address or a token.
        tracing::info!(
            kind = email.kind.as_str(),
            to_domain = recipient_domain(&email.to),
            file = %path.display(),
            "email written to the mail folder (no SMTP host configured; `latchkey mail` lists it)"
        );
        if let Err(err) = prune(&self.dir, KEEP).await {
            tracing::warn!(folder = %self.dir.display(), error = %err, "could not delete old mails");
        }
        Ok(())
    }
}

/// `20261205T010709.123456Z-confirmation-1a2b3c4d.eml`: sorting by name sorts by time.
fn file_name(email: &Email) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let kind = email.kind.env_suffix().to_ascii_lowercase();
    let unique = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{now}-{kind}-{unique}.eml")
}

/// Whether `name` is one of the files this folder writes (see [`file_name`]), so that other
/// files in a folder an operator named are never listed or deleted.
fn is_mail_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".eml") else {
        return false;
    };
    let mut parts = stem.splitn(3, '-');
    let (Some(time), Some(kind), Some(unique)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let time_shape = time.len() == 23
        && time.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'.',
            22 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    time_shape
        && !kind.is_empty()
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && unique.len() == 8
        && unique.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await?;
    file.write_all(contents).await?;
    file.sync_all().await
}

/// Deletes all but the newest `keep` mail files (other files in the folder are left alone).
async fn prune(dir: &Path, keep: usize) -> std::io::Result<()> {
    let mut names = mail_files(dir).await?;
    if names.len() <= keep {
        return Ok(());
    }
    names.sort_unstable();
    let excess = names.len() - keep;
    for name in &names[..excess] {
        tokio::fs::remove_file(dir.join(name)).await?;
    }
    Ok(())
}

async fn mail_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if let Some(name) = entry.file_name().to_str().filter(|n| is_mail_file(n)) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmailKind;

    fn email(kind: EmailKind) -> Email {
        Email {
            kind,
            to: "someone@example.com".into(),
            subject: "Confirm".into(),
            html: "<p><a href=\"http://x.test/verify?token=t&amp;type=signup\">go</a></p>".into(),
            text: "go: http://x.test/verify?token=t&type=signup\n".into(),
        }
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("latchkey-{name}-{}", uuid::Uuid::new_v4().simple()));
        dir.join("mail")
    }

    #[tokio::test]
    async fn mails_are_private_files_named_by_time_and_kind() {
        let dir = scratch_dir("folder");
        let mailer = FolderMailer::open(&dir, "auth@x.test".parse().unwrap()).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        mailer.send(&email(EmailKind::MagicLink)).await.unwrap();
        let names = mail_files(&dir).await.unwrap();
        assert_eq!(names.len(), 1);
        let name = &names[0];
        assert!(name.contains("-magic_link-") && !name.contains("someone"), "{name}");
        assert!(is_mail_file(name), "{name}");
        let file = dir.join(name);
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let raw = std::fs::read_to_string(file).unwrap();
        assert!(
            raw.contains("To: someone@example.com") && raw.contains("From: auth@x.test"),
            "{raw}"
        );
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn only_the_newest_mails_are_kept() {
        let dir = scratch_dir("prune");
        std::fs::create_dir_all(&dir).unwrap();
        for n in 0..5 {
            std::fs::write(
                dir.join(format!("2026010{n}T000000.000000Z-recovery-0000000{n}.eml")),
                "m",
            )
            .unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        std::fs::write(dir.join("2020-archive.eml"), "mine").unwrap();
        prune(&dir, 2).await.unwrap();
        let mut left = mail_files(&dir).await.unwrap();
        left.sort();
        assert_eq!(
            left,
            [
                "20260103T000000.000000Z-recovery-00000003.eml",
                "20260104T000000.000000Z-recovery-00000004.eml"
            ]
        );
        assert!(
            dir.join("notes.txt").exists(),
            "other files are not the folder's to delete"
        );
        assert!(dir.join("2020-archive.eml").exists(), "nor other mail");
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
