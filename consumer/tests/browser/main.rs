//! The dashboard in headless Chromium, against the real services and RabbitMQ: what a person
//! sees, not only what the server sent. Browser tests take turns (one Chromium at a time).

mod alerts;
mod audit;
#[allow(dead_code)]
#[path = "../api/auth_helpers.rs"]
mod auth_helpers;
mod bookmark;
mod display;
mod exposure;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod history;
mod host_sections;
mod login;
mod page;
