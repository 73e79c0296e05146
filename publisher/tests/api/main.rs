mod health;
mod helpers;
mod interval;
mod publish;
mod settings;
