//! Outgoing text messages: the gateways a one-time code can be sent through by SMS.
//!
//! None is built in yet (phone sign-in comes later), so [`Sender`] has no variants: no server
//! can hold one, `auth::outbox::Outbox::sms` refuses every phone request with GoTrue's
//! `phone_provider_disabled`, and the code after that refusal is unreachable, as the compiler
//! checks (`match *sender {}`). Adding the first gateway (Twilio, Twilio Verify, MessageBird,
//! Textlocal, Vonage, the send-SMS hook) turns each of those matches into a compile error at
//! the place where the phone flow goes; the codes it sends come from `auth::codes`, like the
//! mailed ones.

/// A configured SMS gateway. There are none yet.
#[derive(Debug, Clone)]
pub enum Sender {}
