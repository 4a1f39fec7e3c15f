//! model providers
