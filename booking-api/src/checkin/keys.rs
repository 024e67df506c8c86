//! Where the check-in keys come from: `--checkin-keys` (`kid:secret,...`) with
//! `--checkin-active-key`, or else one key generated on first start into the data directory,
//! like the JWT secret.

use super::tokens::Keyring;
use anyhow::Context;
use clap::Args;
use service_kit::secrets::Secret;
use std::path::Path;

/// The key id of the generated default key. To rotate away from it, configure it explicitly
/// beside the new key: `--checkin-keys local:<content of DATA_DIR/booking-checkin-key>,k2:...
/// --checkin-active-key k2`, and drop it once its tokens and printed codes are retired.
pub const DEFAULT_KID: &str = "local";

/// The file in the data directory that holds the generated default key.
pub const DEFAULT_KEY_FILE: &str = "booking-checkin-key";

/// Check-in settings.
#[derive(Debug, Clone, Args)]
pub struct CheckinArgs {
    /// Keys that sign and verify check-in tokens and connector codes, `kid:secret[,kid:secret]`
    /// (kid: 1-32 of A-Za-z0-9_-, secret: at least 16 characters). Every listed key verifies;
    /// default: one key generated into `DATA_DIR/booking-checkin-key` with kid `local`.
    #[arg(long, env = "EVCS_BOOKING_CHECKIN_KEYS", hide_env_values = true)]
    pub checkin_keys: Option<Secret>,

    /// The key id that signs new tokens and codes (default: the first of `--checkin-keys`).
    #[arg(long, env = "EVCS_BOOKING_CHECKIN_ACTIVE_KEY")]
    pub checkin_active_key: Option<String>,

    /// Lifetime of a check-in token, in minutes; a token never outlives its booking's slot.
    #[arg(long, env = "EVCS_BOOKING_CHECKIN_TOKEN_MINUTES", default_value_t = 1440)]
    pub checkin_token_minutes: i64,
}

impl Default for CheckinArgs {
    fn default() -> CheckinArgs {
        CheckinArgs {
            checkin_keys: None,
            checkin_active_key: None,
            checkin_token_minutes: 1440,
        }
    }
}

/// The keyring `args` name, or the generated default kept in `data_dir`.
pub fn load(args: &CheckinArgs, data_dir: &Path) -> anyhow::Result<Keyring> {
    match &args.checkin_keys {
        Some(spec) => Ok(Keyring::parse(spec.expose(), args.checkin_active_key.as_deref())?),
        None => {
            anyhow::ensure!(
                args.checkin_active_key.is_none(),
                "--checkin-active-key needs --checkin-keys"
            );
            let secret = service_kit::secrets::stored_secret(None, data_dir, DEFAULT_KEY_FILE)
                .context("the generated check-in key")?;
            Ok(Keyring::new(
                vec![(DEFAULT_KID.to_string(), secret.into_bytes())],
                None,
            )?)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let args = CheckinArgs::default();
        let first = load(&args, dir.path()).unwrap();
        assert_eq!(first.active_kid(), DEFAULT_KID);
        let token = first.issue(1, 100);
        let again = load(&args, dir.path()).unwrap();
        assert!(again.verify_booking(&token, 0).is_ok());
    }

    #[test]
    fn configured_keys_replace_the_generated_one() {
        let dir = tempfile::tempdir().unwrap();
        let args = CheckinArgs {
            checkin_keys: Some(Secret::new("old:0123456789abcdef,new:fedcba9876543210")),
            checkin_active_key: Some("new".into()),
            ..CheckinArgs::default()
        };
        assert_eq!(load(&args, dir.path()).unwrap().active_kid(), "new");
        assert!(!dir.path().join(DEFAULT_KEY_FILE).exists());
        let orphan = CheckinArgs {
            checkin_active_key: Some("new".into()),
            ..CheckinArgs::default()
        };
        assert!(load(&orphan, dir.path()).is_err());
    }
}
