//! `GET /api/hosts/{host}/history?from=&to=&points=&format=`: a host's history, columnar for
//! uPlot (JSON) or as a CSV download, at the tier that fits the range.

use crate::clock::SharedClock;
use crate::history::recorder::History;
use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shared::http::error_body;
use std::sync::Arc;

/// The range when none is given: the last hour.
const DEFAULT_RANGE: chrono::Duration = chrono::Duration::hours(1);

/// The query string, each value checked by hand so an error names its parameter.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    points: Option<String>,
    format: Option<String>,
}

/// Why a history request was not answered with data.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    BadParameter(String),
    #[error("history is off on this consumer (HISTORY_URL=off)")]
    Off,
    #[error("the history store has no readings from this host")]
    UnknownHost,
    #[error("the history store is not reachable: {0}; see /health")]
    Unavailable(String),
}

impl actix_web::ResponseError for HistoryError {
    fn status_code(&self) -> StatusCode {
        match self {
            HistoryError::BadParameter(_) => StatusCode::BAD_REQUEST,
            HistoryError::Off | HistoryError::UnknownHost => StatusCode::NOT_FOUND,
            HistoryError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            HistoryError::BadParameter(_) => "bad_parameter",
            HistoryError::Off => "history_off",
            HistoryError::UnknownHost => "unknown_host",
            HistoryError::Unavailable(_) => "store_unavailable",
        };
        error_body(self.status_code(), code, &self.to_string())
    }
}

/// Unix seconds (fractions allowed) or RFC 3339.
fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, HistoryError> {
    let bad = || {
        HistoryError::BadParameter(format!(
            "{name}: expected unix seconds or an RFC 3339 time, got {value:?}"
        ))
    };
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() {
            return Err(bad());
        }
        return DateTime::from_timestamp_millis((secs * 1000.0) as i64).ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad())
}

/// A host's history over a range.
pub async fn history(
    host: web::Path<String>,
    query: web::Query<HistoryQuery>,
    history: web::Data<Arc<History>>,
    clock: web::Data<SharedClock>,
) -> Result<HttpResponse, HistoryError> {
    let now = clock.now();
    let to = match query.to.as_deref() {
        Some(v) => parse_time("to", v)?,
        None => now,
    };
    let from = match query.from.as_deref() {
        Some(v) => parse_time("from", v)?,
        None => to - DEFAULT_RANGE,
    };
    if from >= to {
        return Err(HistoryError::BadParameter("from: must be before to".into()));
    }
    let points = match query.points.as_deref() {
        None => None,
        Some(v) => match v.parse::<u32>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                return Err(HistoryError::BadParameter(format!(
                    "points: expected a positive whole number, got {v:?}"
                )))
            }
        },
    };
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(HistoryError::BadParameter(format!(
                "format: expected json or csv, got {other:?}"
            )))
        }
    };
    let Some(store) = history.store() else {
        return Err(if history.state().enabled {
            HistoryError::Unavailable("not opened yet".into())
        } else {
            HistoryError::Off
        });
    };
    let found = match store.history(&host, from, to, points, now).await {
        Ok(Some(found)) => found,
        Ok(None) => return Err(HistoryError::UnknownHost),
        Err(e) if e.reason() == "invalid_query" => {
            return Err(HistoryError::BadParameter(e.to_string()))
        }
        Err(e) => return Err(HistoryError::Unavailable(e.to_string())),
    };
    if !csv {
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .json(found));
    }
    let text = found
        .to_csv()
        .map_err(|e| HistoryError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}-{}-{}.csv\"",
                sanitize(&host),
                from.timestamp(),
                to.timestamp()
            ),
        ))
        .body(text))
}

/// A host name as a file name: letters, digits, `.`, `-` and `_` only.
fn sanitize(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
