//! The consumer's command line: no subcommand serves the dashboard; the others manage logins
//! and API tokens and exit.

use crate::clock::SystemClock;
use crate::history::store::settings::DEFAULT_DATA_DIR;
use crate::history::store::{HistorySettings, Store};
use crate::web::auth::tokens::{self, TokenStore};
use crate::web::auth::{FileTokenStore, Imported, StoreTokenStore};
use clap::{Parser, Subcommand};
use shared::settings::EnvSource;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code for bad input or settings.
const EXIT_BAD_INPUT: u8 = 2;

/// hostpulse consumer: the live dashboard over RabbitMQ.
#[derive(Debug, Parser)]
#[command(name = "consumer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do instead of serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reads a password from stdin (without echo on a terminal) and prints its argon2id hash
    /// for a `name:hash` line of DASHBOARD_USERS_FILE.
    HashPassword,
    /// Read-only API tokens for scripts (`Authorization: Bearer …` on /api/*).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

/// `consumer token …`.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Makes a token and prints it once; only its hash is kept.
    Create {
        /// What the token is for, shown by `list`.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Lists tokens (id, name, creation time), never their secrets.
    List,
    /// Revokes a token by id; a running consumer refuses it from its next request.
    Revoke {
        /// The id `list` shows.
        id: String,
    },
}

/// Runs a subcommand.
pub async fn run(command: Command) -> ExitCode {
    match command {
        Command::HashPassword => hash_password(),
        Command::Token { action } => token(action).await,
    }
}

fn hash_password() -> ExitCode {
    let password = match read_password() {
        Ok(password) => password,
        Err(e) => {
            eprintln!("consumer hash-password: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    match crate::web::auth::hash_password(&password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("consumer hash-password: cannot hash ({e})");
            ExitCode::FAILURE
        }
    }
}

/// On a terminal: asked twice, not echoed. Otherwise: the first line of stdin.
fn read_password() -> Result<String, String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(password)
}

async fn token(action: TokenAction) -> ExitCode {
    let env = match EnvSource::load_app("CONSUMER_ENV_FILE", "consumer.env") {
        Ok(env) => env,
        Err(e) => {
            eprintln!("consumer token: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let history = match HistorySettings::from_env(&env) {
        Ok(history) => history,
        Err(e) => {
            eprintln!("consumer token: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let dir = std::path::Path::new(env.get("DATA_DIR").unwrap_or(DEFAULT_DATA_DIR));
    // The history store when there is one (as the serving consumer does), else the file.
    let (store, opened): (Box<dyn TokenStore>, _) = match Store::open(&history).await {
        Ok(None) => (Box::new(FileTokenStore::open(dir)), None),
        Ok(Some(opened)) => {
            let opened = Arc::new(opened);
            let store = StoreTokenStore::opened(Arc::clone(&opened), dir, Arc::new(SystemClock));
            match store.import_legacy().await {
                Ok(Imported {
                    found,
                    added,
                    renamed_to: Some(to),
                }) => eprintln!(
                    "{found} token(s) of the old file imported into the history store ({added}                      new); the file is now {}",
                    to.display()
                ),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("consumer token: cannot import the old token file: {e}");
                    return ExitCode::FAILURE;
                }
            }
            (Box::new(store), Some(opened))
        }
        Err(e) => {
            eprintln!("consumer token: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = token_action(store.as_ref(), action).await;
    if let Some(opened) = opened {
        opened.close().await;
    }
    code
}

async fn token_action(store: &dyn TokenStore, action: TokenAction) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let result = match action {
        TokenAction::Create { name } => tokens::issue(store, &name, chrono::Utc::now())
            .await
            .map(|(info, secret)| {
                let _ = writeln!(out, "{secret}");
                eprintln!(
                    "token {} created; it is shown only this once. Use: Authorization: Bearer <token>",
                    info.id
                );
                ExitCode::SUCCESS
            }),
        TokenAction::List => store.list().await.map(|list| {
            let time = |t: chrono::DateTime<chrono::Utc>| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            };
            let _ = writeln!(out, "{:<14} {:<22} {:<22} NAME", "ID", "CREATED", "LAST USED");
            for info in list {
                let used = info.last_used_at.map(time).unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "{:<14} {:<22} {:<22} {}",
                    info.id,
                    time(info.created_at),
                    used,
                    info.name
                );
            }
            ExitCode::SUCCESS
        }),
        TokenAction::Revoke { id } => store.revoke(&id).await.map(|found| {
            if found {
                eprintln!("token {id} revoked");
                ExitCode::SUCCESS
            } else {
                eprintln!("consumer token revoke: no live token with id {id:?}");
                ExitCode::from(EXIT_BAD_INPUT)
            }
        }),
    };
    result.unwrap_or_else(|e| {
        eprintln!("consumer token: {e}");
        ExitCode::FAILURE
    })
}
