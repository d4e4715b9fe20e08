//! The text of every mail Bulwark sends. Plain text, no tracking, links only to our public URL.

use mail::OutgoingMail;

use crate::config::ServerConfig;

const SIGNATURE: &str = "\n-- \nBulwark, your self-hosted trading platform.\nIf something here looks wrong, sign in and open Account > Security, or ask your operator.\n";

pub fn verify_email(config: &ServerConfig, to: &str, token: &str) -> OutgoingMail {
    let link = config.link(&format!("/verify-email?token={token}"));
    OutgoingMail {
        to: to.to_owned(),
        subject: "Confirm your email for Bulwark".to_owned(),
        text: format!(
            "Welcome to Bulwark.\n\nConfirm this address by opening the link below. It works once and expires in {} hours.\n\n{link}\n\nIf you did not create an account, ignore this mail: nothing happens without the link.\n{SIGNATURE}",
            config.verify_token_ttl.as_secs() / 3600
        ),
    }
}

pub fn already_registered(config: &ServerConfig, to: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Someone tried to create a Bulwark account with your email".to_owned(),
        text: format!(
            "Someone (perhaps you) tried to create a Bulwark account with this address, which already has one.\n\nTo sign in: {}\nForgot your password? {}\n\nIf this was not you, you do not need to do anything: your account is unchanged.\n{SIGNATURE}",
            config.link("/"),
            config.link("/forgot-password")
        ),
    }
}

pub fn reset_password(config: &ServerConfig, to: &str, token: &str) -> OutgoingMail {
    let link = config.link(&format!("/reset-password?token={token}"));
    OutgoingMail {
        to: to.to_owned(),
        subject: "Reset your Bulwark password".to_owned(),
        text: format!(
            "Someone asked to reset the password of the Bulwark account for this address.\n\nTo choose a new password, open the link below. It works once and expires in {} minutes. Resetting signs out every session; two-factor sign-in, if on, still applies.\n\n{link}\n\nIf you did not ask for this, ignore this mail: your password stays as it is.\n{SIGNATURE}",
            config.reset_token_ttl.as_secs() / 60
        ),
    }
}

pub fn password_changed(config: &ServerConfig, to: &str, how: &str, ip: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Your Bulwark password was changed".to_owned(),
        text: format!(
            "The password of your Bulwark account was {how} from {ip}. Other sessions were signed out.\n\nIf this was not you, reset your password now: {}\n{SIGNATURE}",
            config.link("/forgot-password")
        ),
    }
}

pub fn new_sign_in(config: &ServerConfig, to: &str, ip: &str, user_agent: &str, when: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "New sign-in to your Bulwark account".to_owned(),
        text: format!(
            "Your Bulwark account was signed in to from a device or address it had not used before.\n\nWhen: {when}\nAddress: {ip}\nBrowser: {user_agent}\n\nIf this was you, there is nothing to do. If not, change your password and sign out all sessions: {}\n{SIGNATURE}",
            config.link("/account/security")
        ),
    }
}

pub fn two_factor_enabled(config: &ServerConfig, to: &str, ip: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Two-factor sign-in is now on for your Bulwark account".to_owned(),
        text: format!(
            "Two-factor sign-in was turned on for your Bulwark account from {ip}. From now on, signing in needs a code from your authenticator app or one of your backup codes. Other sessions were signed out.\n\nKeep your backup codes somewhere safe and offline.\n\nIf this was not you, reset your password now and contact your operator: {}\n{SIGNATURE}",
            config.link("/forgot-password")
        ),
    }
}

pub fn two_factor_disabled(config: &ServerConfig, to: &str, ip: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Two-factor sign-in was turned off for your Bulwark account".to_owned(),
        text: format!(
            "Two-factor sign-in was turned off for your Bulwark account from {ip}. Signing in now needs only the password. Other sessions were signed out.\n\nIf this was not you, reset your password now and turn two-factor sign-in back on: {}\n{SIGNATURE}",
            config.link("/forgot-password")
        ),
    }
}

pub fn backup_codes_regenerated(config: &ServerConfig, to: &str, ip: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "New backup codes for your Bulwark account".to_owned(),
        text: format!(
            "New backup codes were made for your Bulwark account from {ip}. The old ones no longer work.\n\nIf this was not you, reset your password now: {}\n{SIGNATURE}",
            config.link("/forgot-password")
        ),
    }
}

pub fn backup_code_used(config: &ServerConfig, to: &str, ip: &str, left: usize) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "A backup code was used for your Bulwark account".to_owned(),
        text: format!(
            "One of your backup codes was used from {ip}. It cannot be used again; {left} unused codes are left.{}\n\nIf this was not you, reset your password now: {}\n{SIGNATURE}",
            if left <= 3 { " Make a new set under Account > Security soon." } else { "" },
            config.link("/forgot-password")
        ),
    }
}

pub fn confirm_email_change(config: &ServerConfig, to: &str, token: &str) -> OutgoingMail {
    let link = config.link(&format!("/confirm-email-change?token={token}"));
    OutgoingMail {
        to: to.to_owned(),
        subject: "Confirm your new email for Bulwark".to_owned(),
        text: format!(
            "Someone signed in to a Bulwark account asked to make this address its sign-in email.\n\nTo confirm, open the link below. It works once and expires in {} minutes.\n\n{link}\n\nIf you did not ask for this, ignore this mail: nothing changes without the link.\n{SIGNATURE}",
            config.email_change_ttl.as_secs() / 60
        ),
    }
}

pub fn email_change_to_taken_address(config: &ServerConfig, to: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Someone tried to move a Bulwark account to your email".to_owned(),
        text: format!(
            "Someone signed in to another Bulwark account asked to make this address its sign-in email. This address already has an account, so nothing was changed.\n\nIf this was you, sign in with this address instead: {}\n{SIGNATURE}",
            config.link("/")
        ),
    }
}

pub fn email_change_requested(config: &ServerConfig, to: &str, new_email: &str, ip: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "A change of your Bulwark email was requested".to_owned(),
        text: format!(
            "From {ip}, someone signed in to your Bulwark account asked to change its email to {new_email}. The change happens only when the link sent to that address is opened.\n\nIf this was not you, change your password and sign out all sessions now: {}\n{SIGNATURE}",
            config.link("/account/security")
        ),
    }
}

pub fn email_changed(config: &ServerConfig, to: &str, new_email: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Your Bulwark email was changed".to_owned(),
        text: format!(
            "The sign-in email of your Bulwark account is now {new_email}; this address no longer signs in, and other sessions were signed out.\n\nIf this was not you, contact your operator at once and reset the password of {new_email}: {}\n{SIGNATURE}",
            config.link("/forgot-password")
        ),
    }
}

pub fn exchange_key_added(config: &ServerConfig, to: &str, exchange: &str, name: &str, hint: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "An exchange key was connected to your Bulwark account".to_owned(),
        text: format!(
            "The {exchange} API key {hint} was connected to your Bulwark account as \"{name}\". Bulwark checked that it can trade and cannot withdraw, and sealed its secret.\n\nIf this was not you, sign in, remove the account at {}, delete the key on the exchange, and change your password.\n{SIGNATURE}",
            config.link("/exchange-accounts")
        ),
    }
}

pub fn exchange_key_refused(config: &ServerConfig, to: &str, exchange: &str, hint: &str, why: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.to_owned(),
        subject: "Bulwark refused an exchange key".to_owned(),
        text: format!(
            "Someone signed in to your Bulwark account tried to connect the {exchange} API key {hint}, and Bulwark refused it. Its secret was not stored.\n\n{why}\n\nIf this was not you, change your password at {} and delete that key on the exchange.\n{SIGNATURE}",
            config.link("/account/security")
        ),
    }
}

pub fn exchange_key_paused(config: &ServerConfig, to: &str, name: &str, exchange: &str, reason: &str) -> OutgoingMail {
    let why = match reason {
        "withdrawal_permission_enabled" => "the key can now withdraw funds",
        "transfer_permission_enabled" => "the key can now transfer funds between accounts",
        "trading_permission_missing" => "the key can no longer trade spot",
        "ip_restriction_missing" => "the key is no longer restricted to trusted IP addresses",
        _ => "the exchange no longer accepts the key (revoked, expired, or not allowed from this server's IP address)",
    };
    OutgoingMail {
        to: to.to_owned(),
        subject: format!("Trading paused on your {exchange} account \"{name}\""),
        text: format!(
            "Bulwark paused trading on your {exchange} account \"{name}\" because {why}. No order will be sent with this key until a check finds it safe again.\n\nFix the key's restrictions on the exchange, then press \"Check again\" at {}. If you did not change the key, someone else may have access to your exchange account: delete the key there now.\n{SIGNATURE}",
            config.link("/exchange-accounts")
        ),
    }
}
