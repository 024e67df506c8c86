//! The `central-system` command line as a newcomer types it: settings work before and after
//! the subcommand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use central_system::auth::jwt::{operator_keys, Claims, JwtError, Role};
use std::process::Command;

fn mint(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_central-system"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn claims(secret: &str, token: &str) -> Result<Claims, JwtError> {
    operator_keys(secret.as_bytes()).verify(token, chrono::Utc::now().timestamp())
}

#[test]
fn mint_token_takes_the_settings_after_the_subcommand_too() {
    let secret = "cli-test-secret-0123456789abcdef";
    let after = mint(&[
        "mint-token",
        "--jwt-secret",
        secret,
        "--role",
        "operator",
        "--subject",
        "ann",
    ]);
    let c = claims(secret, &after).unwrap();
    assert_eq!((c.role, c.sub.as_str()), (Role::Operator, "ann"));
    let before = mint(&["--jwt-secret", secret, "mint-token"]);
    assert_eq!(claims(secret, &before).unwrap().role, Role::Admin);
    assert_eq!(
        claims("some-other-secret-0123456789", &before),
        Err(JwtError::Signature)
    );

    // The data dir's generated secret, named after the subcommand or before it: the same one.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let first = mint(&["mint-token", "--data-dir", data_dir]);
    let second = mint(&["--data-dir", data_dir, "mint-token"]);
    let stored = std::fs::read_to_string(dir.path().join("jwt-secret")).unwrap();
    for token in [&first, &second] {
        claims(stored.trim(), token).unwrap();
    }
}
