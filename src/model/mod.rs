//! The model: parameter layouts, initialisation, and the forward-then-backward tape of each network.

pub mod deform;
