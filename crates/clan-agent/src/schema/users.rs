//! `users` and `groups`: the accounts of the machine's `users` instances and
//! root's keys from `sshd`. Accounts are configuration: changes go to the clan the
//! machine holds (see `held`), else are refused with what to run in the clan.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};

use std::collections::BTreeMap;

use super::{
    DateTime, GenericMutationReturn, agent, blocking, change_config, managed_elsewhere, unsupported,
};
use crate::held;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum UserType {
    Normal,
    Primary,
    Root,
}

#[derive(SimpleObject)]
pub struct EmailPasswordMetadata {
    pub uuid: String,
    pub display_name: String,
    pub created_at: Option<DateTime>,
    pub expires_at: Option<DateTime>,
    pub last_used: Option<DateTime>,
}

#[derive(SimpleObject)]
pub struct User {
    pub username: String,
    pub user_type: UserType,
    pub ssh_keys: Option<Vec<String>>,
    pub directmemberof: Option<Vec<String>>,
    pub memberof: Option<Vec<String>>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub email_password_metadata: Option<Vec<EmailPasswordMetadata>>,
}

/// Groups that make an account the machine's administrator.
const ADMIN_GROUPS: [&str; 3] = ["wheel", "sudo", "admins"];

fn users_of(ctx: &Context<'_>) -> Vec<User> {
    let m = agent(ctx).machine();
    m.clan_core
        .users
        .iter()
        .filter(|(name, _)| name.as_str() != "root")
        .map(|(name, u)| User {
            username: name.clone(),
            user_type: if u.groups.iter().any(|g| ADMIN_GROUPS.contains(&g.as_str())) {
                UserType::Primary
            } else {
                UserType::Normal
            },
            ssh_keys: Some(u.authorized_keys.clone()),
            directmemberof: Some(u.groups.clone()),
            memberof: Some(u.groups.clone()),
            display_name: None,
            email: None,
            email_password_metadata: None,
        })
        .collect()
}

fn root(ctx: &Context<'_>) -> User {
    let m = agent(ctx).machine();
    User {
        username: "root".into(),
        user_type: UserType::Root,
        ssh_keys: Some(m.clan_core.sshd.authorized_keys.values().cloned().collect()),
        directmemberof: None,
        memberof: None,
        display_name: None,
        email: None,
        email_password_metadata: None,
    }
}

pub struct Users;

#[Object]
impl Users {
    async fn all_users(&self, ctx: &Context<'_>) -> Vec<User> {
        users_of(ctx)
    }

    async fn get_user(&self, ctx: &Context<'_>, username: String) -> Option<User> {
        if username == "root" {
            return Some(root(ctx));
        }
        users_of(ctx).into_iter().find(|u| u.username == username)
    }
}

#[derive(SimpleObject)]
pub struct Group {
    pub name: String,
    pub group_class: Option<Vec<String>>,
    pub member: Option<Vec<String>>,
    pub memberof: Option<Vec<String>>,
    pub directmemberof: Option<Vec<String>>,
    pub spn: Option<String>,
    pub description: Option<String>,
}

pub struct Groups;

#[Object]
impl Groups {
    /// The groups the machine's accounts are in, with their members.
    async fn all_groups(&self, ctx: &Context<'_>) -> Vec<Group> {
        let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for u in users_of(ctx) {
            for g in u.directmemberof.unwrap_or_default() {
                groups.entry(g).or_default().push(u.username.clone());
            }
        }
        groups
            .into_iter()
            .map(|(name, member)| Group {
                name,
                group_class: None,
                member: Some(member),
                memberof: None,
                directmemberof: None,
                spn: None,
                description: None,
            })
            .collect()
    }
}

#[derive(SimpleObject)]
pub struct UserMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub user: Option<User>,
}

impl From<GenericMutationReturn> for UserMutationReturn {
    fn from(r: GenericMutationReturn) -> Self {
        Self {
            success: r.success,
            message: r.message,
            code: r.code,
            user: None,
        }
    }
}

#[derive(SimpleObject)]
pub struct PasswordResetLinkReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub password_reset_link: Option<String>,
}

#[derive(InputObject)]
pub struct UserMutationInput {
    pub username: String,
    #[graphql(default)]
    pub directmemberof: Option<Vec<String>>,
    #[graphql(default)]
    pub password: Option<String>,
    #[graphql(default)]
    pub display_name: Option<String>,
}

#[derive(InputObject)]
pub struct SshMutationInput {
    pub username: String,
    pub ssh_key: String,
}

pub struct UsersMutations;

/// A user's password, set as the answer of its generator's prompt (empty: one is
/// generated).
async fn set_password(
    ctx: &Context<'_>,
    user: &str,
    password: String,
    regenerate: bool,
) -> GenericMutationReturn {
    let Some(held) = agent(ctx).held() else {
        return managed_elsewhere(ctx, "passwords");
    };
    let generator = format!("user-password-{user}");
    let answers = BTreeMap::from([("user-password", password.into_bytes())]);
    match blocking(move || held.generate(&generator, answers, regenerate)).await {
        Ok(()) => GenericMutationReturn::ok(super::APPLY_HINT),
        Err(r) => {
            GenericMutationReturn::with(r.code, format!("The password was not set: {}", r.message))
        }
    }
}

/// The user as served after a change, else as the input describes it.
fn user_after(
    ctx: &Context<'_>,
    r: GenericMutationReturn,
    input: &UserMutationInput,
) -> UserMutationReturn {
    let user = r.success.then(|| {
        users_of(ctx)
            .into_iter()
            .find(|u| u.username == input.username)
            .unwrap_or_else(|| User {
                username: input.username.clone(),
                user_type: UserType::Normal,
                ssh_keys: Some(Vec::new()),
                directmemberof: input.directmemberof.clone(),
                memberof: input.directmemberof.clone(),
                display_name: input.display_name.clone(),
                email: None,
                email_password_metadata: None,
            })
    });
    UserMutationReturn { user, ..r.into() }
}

async fn ssh_key(ctx: &Context<'_>, input: SshMutationInput, add: bool) -> UserMutationReturn {
    let SshMutationInput { username, ssh_key } = input;
    let what = format!(
        "users: {} an SSH key of {username}",
        if add { "add" } else { "remove" }
    );
    let user = username.clone();
    let r = change_config(ctx, "SSH keys", what, move |clan, m| {
        held::ssh_key(clan, m, &user, &ssh_key, add)
    })
    .await;
    let user = if username == "root" {
        Some(root(ctx))
    } else {
        users_of(ctx).into_iter().find(|u| u.username == username)
    };
    UserMutationReturn {
        user: user.filter(|_| r.success),
        ..r.into()
    }
}

#[Object]
impl UsersMutations {
    /// A user of module `users` on this machine (instance `user-<name>`), its
    /// password the answer of its generator's prompt.
    pub async fn create_user(
        &self,
        ctx: &Context<'_>,
        user: UserMutationInput,
    ) -> UserMutationReturn {
        let (name, groups) = (
            user.username.clone(),
            user.directmemberof.clone().unwrap_or_default(),
        );
        let what = format!("users: create {name}");
        let r = change_config(ctx, "the machine's accounts", what, move |clan, m| {
            held::create_user(clan, m, &name, &groups)
        })
        .await;
        let r = if r.success {
            set_password(
                ctx,
                &user.username,
                user.password.clone().unwrap_or_default(),
                false,
            )
            .await
        } else {
            r
        };
        user_after(ctx, r, &user)
    }

    pub async fn delete_user(&self, ctx: &Context<'_>, username: String) -> GenericMutationReturn {
        let what = format!("users: delete {username}");
        change_config(ctx, "the machine's accounts", what, move |clan, m| {
            held::delete_user(clan, m, &username)
        })
        .await
    }

    /// Groups and password (a display name is not part of clan's users).
    pub async fn update_user(
        &self,
        ctx: &Context<'_>,
        user: UserMutationInput,
    ) -> UserMutationReturn {
        let mut r = GenericMutationReturn::ok(super::APPLY_HINT);
        if let Some(groups) = user.directmemberof.clone() {
            let name = user.username.clone();
            let what = format!("users: groups of {name}");
            r = change_config(ctx, "the machine's accounts", what, move |clan, m| {
                held::set_groups(clan, m, &name, &groups)
            })
            .await;
        }
        if let (true, Some(password)) = (r.success, user.password.clone()) {
            let exists = agent(ctx).held().is_none()
                || held::user_instance(&agent(ctx).machine(), &user.username).is_some();
            r = if exists {
                set_password(ctx, &user.username, password, true).await
            } else {
                GenericMutationReturn::with(404, "User not found")
            };
        }
        user_after(ctx, r, &user)
    }

    pub async fn add_ssh_key(
        &self,
        ctx: &Context<'_>,
        ssh_input: SshMutationInput,
    ) -> UserMutationReturn {
        ssh_key(ctx, ssh_input, true).await
    }

    pub async fn remove_ssh_key(
        &self,
        ctx: &Context<'_>,
        ssh_input: SshMutationInput,
    ) -> UserMutationReturn {
        ssh_key(ctx, ssh_input, false).await
    }

    pub async fn generate_password_reset_link(&self, username: String) -> PasswordResetLinkReturn {
        let _ = username;
        let r = unsupported("A password reset link (passwords are vars: `clan vars set`)");
        PasswordResetLinkReturn {
            success: r.success,
            message: r.message,
            code: r.code,
            password_reset_link: None,
        }
    }
}

pub struct EmailPasswordsMetadataMutations;

#[Object]
impl EmailPasswordsMetadataMutations {
    /// There are no email passwords here: nothing of that id to delete.
    async fn delete_email_password(&self, username: String, uuid: String) -> GenericMutationReturn {
        let _ = (username, uuid);
        GenericMutationReturn::with(404, "No such email password.")
    }
}
