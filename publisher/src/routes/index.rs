//! `GET /`: what this service is and the routes it answers, for a person who opens it in a
//! browser or with curl.

use actix_web::HttpResponse;

/// Each route and what it does.
pub const ROUTES: [(&str, &str); 5] = [
    (
        "/publish",
        "take a reading now and publish it; answers once the broker confirmed it",
    ),
    ("/api/reading", "the current reading, not published"),
    ("/health", "the service and its broker connection"),
    ("/ready", "200 while connected to the broker, 503 otherwise"),
    ("/metrics", "Prometheus metrics"),
];

/// `GET /`: this service's name and its routes, as JSON.
pub async fn index() -> HttpResponse {
    let routes: serde_json::Map<String, serde_json::Value> = ROUTES
        .iter()
        .map(|(path, what)| ((*path).to_owned(), (*what).into()))
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "service": "hostpulse publisher",
        "about": "samples this host and publishes each reading to RabbitMQ; the dashboard is the consumer's",
        "routes": routes,
    }))
}
