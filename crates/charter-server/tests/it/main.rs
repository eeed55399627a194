//! Integration tests of the control plane over real HTTP on loopback. Every test runs twice,
//! once per backend (`sqlite` and `postgres` modules), each with its own fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod admin_auth;
mod apis_partners;
mod architecture;
mod audit_chain;
mod bad_input;
mod compliance;
mod console;
mod contract_edges;
mod edge_attacks;
mod evidence;
mod export;
mod findings;
mod gateway;
mod grants;
mod lifecycle;
mod listeners;
mod multi_node;
mod nginx;
mod oauth;
mod offboarding;
mod openapi;
mod reviews;
mod role_matrix;
mod separation_of_duties;
mod trust;
mod upstreams;
