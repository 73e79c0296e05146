//! The consumer's command line: no subcommand serves the dashboard; the others manage logins
//! and API tokens and exit.

use crate::auth::tokens::{self, TokenStore};
use crate::auth::FileTokenStore;
use clap::{Parser, Subcommand};
use shared::settings::EnvSource;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

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
    match crate::auth::hash_password(&password) {
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
    let dir = env.get("DATA_DIR").unwrap_or("./data");
    let store = FileTokenStore::open(std::path::Path::new(dir));
    let mut out = std::io::stdout().lock();
    let result = match action {
        TokenAction::Create { name } => tokens::issue(&store, &name, chrono::Utc::now())
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
            let _ = writeln!(out, "{:<14} {:<26} NAME", "ID", "CREATED");
            for info in list {
                let created = info.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let _ = writeln!(out, "{:<14} {:<26} {}", info.id, created, info.name);
            }
            ExitCode::SUCCESS
        }),
        TokenAction::Revoke { id } => store.revoke(&id).await.map(|found| {
            if found {
                eprintln!("token {id} revoked");
                ExitCode::SUCCESS
            } else {
                eprintln!("consumer token revoke: no token with id {id:?}");
                ExitCode::from(EXIT_BAD_INPUT)
            }
        }),
    };
    result.unwrap_or_else(|e| {
        eprintln!("consumer token: {e}");
        ExitCode::FAILURE
    })
}
