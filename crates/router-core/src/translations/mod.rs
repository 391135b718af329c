//! Tests of the translations across rooms: golden streams and answers in each provider's wire
//! format with the exact translation each must produce, and properties over generated input.

mod golden;
mod hostile;
mod properties;
