//! The built-in subjects and bodies: used when none is configured, and whenever a configured
//! template cannot be had (a URL that does not answer) or fails on a mail.

use crate::config::EmailKind;

pub(super) fn subject(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::Confirmation => "Confirm your email address",
        EmailKind::Invite => "You've been invited",
        EmailKind::Recovery => "Reset your password",
        EmailKind::MagicLink => "Your sign-in link",
        EmailKind::EmailChange => "Confirm your new email address",
        EmailKind::Reauthentication => "Confirm reauthentication",
    }
}

pub(super) fn html(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::Confirmation => {
            "<h2>Confirm your signup</h2>\n<p>Follow this link to confirm your user:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Confirm your mail</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::Invite => {
            "<h2>You have been invited</h2>\n<p>You have been invited to create a user on {{ .SiteURL }}. Follow this link to accept the invite:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Accept the invite</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::Recovery => {
            "<h2>Reset Password</h2>\n<p>Follow this link to reset the password for your user:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Reset Password</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::MagicLink => {
            "<h2>Magic Link</h2>\n<p>Follow this link to login:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Log In</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::EmailChange => {
            "<h2>Confirm email address change</h2>\n<p>Follow this link to confirm the update of your email address from {{ .Email }} to {{ .NewEmail }}:</p>\n\
             <p><a href=\"{{ .ConfirmationURL }}\">Change email address</a></p>\n<p>Alternatively, enter the code: {{ .Token }}</p>"
        }
        EmailKind::Reauthentication => "<h2>Confirm reauthentication</h2>\n<p>Enter the code: {{ .Token }}</p>",
    }
}

/// The plain-text part of the built-in mails (a configured template's is derived from its
/// HTML instead).
pub(super) fn text(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::Confirmation => {
            "Confirm your signup\n\nFollow this link to confirm your user:\n{{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::Invite => {
            "You have been invited\n\nYou have been invited to create a user on {{ .SiteURL }}. Follow this link to accept the invite:\n\
             {{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::Recovery => {
            "Reset Password\n\nFollow this link to reset the password for your user:\n{{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::MagicLink => {
            "Magic Link\n\nFollow this link to login:\n{{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::EmailChange => {
            "Confirm email address change\n\nFollow this link to confirm the update of your email address from {{ .Email }} to {{ .NewEmail }}:\n\
             {{ .ConfirmationURL }}\n\nAlternatively, enter the code: {{ .Token }}\n"
        }
        EmailKind::Reauthentication => "Confirm reauthentication\n\nEnter the code: {{ .Token }}\n",
    }
}
