//! Users and their privileges.

use super::*;

impl MetaStore {
    // ---------------------------------------------------------------------- users

    /// Creates a user. An existing user with the same password and admin flag is a
    /// no-op; otherwise `user already exists`.
    #[tracing::instrument(skip(self, password), err(level = "debug"))]
    pub async fn create_user(&self, name: &str, password: &str, admin: bool) -> Result<i64> {
        validate_user_name(name)?;
        if password.is_empty() {
            return Err(Error::PasswordRequired);
        }
        let hash = auth::hash_password(password)?;
        self.update::<UserInfo, _>(&keys::user(name), |cur| match cur {
            Some(u) => {
                if u.admin == admin && u.verify_password(password) {
                    Ok((Change::Keep, vec![]))
                } else {
                    Err(Error::UserExists)
                }
            }
            None => Ok((
                Change::Put(UserInfo {
                    name: name.to_string(),
                    hash: hash.clone(),
                    admin,
                    privileges: BTreeMap::new(),
                }),
                vec![],
            )),
        })
        .await
    }

    /// Drops a user (`user not found` if missing).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn drop_user(&self, name: &str) -> Result<i64> {
        validate_user_name(name)?;
        self.update::<UserInfo, _>(&keys::user(name), |cur| match cur {
            Some(_) => Ok((Change::Delete, vec![])),
            None => Err(Error::UserNotFound),
        })
        .await
    }

    /// Sets a user's password.
    #[tracing::instrument(skip(self, password), err(level = "debug"))]
    pub async fn set_password(&self, name: &str, password: &str) -> Result<i64> {
        validate_user_name(name)?;
        if password.is_empty() {
            return Err(Error::PasswordRequired);
        }
        let hash = auth::hash_password(password)?;
        self.update::<UserInfo, _>(&keys::user(name), |cur| {
            let mut u = cur.ok_or(Error::UserNotFound)?;
            u.hash = hash.clone();
            Ok((Change::Put(u), vec![]))
        })
        .await
    }

    /// Grants or removes cluster admin.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn set_admin(&self, name: &str, admin: bool) -> Result<i64> {
        validate_user_name(name)?;
        self.update::<UserInfo, _>(&keys::user(name), |cur| {
            let mut u = cur.ok_or(Error::UserNotFound)?;
            if u.admin == admin {
                return Ok((Change::Keep, vec![]));
            }
            u.admin = admin;
            Ok((Change::Put(u), vec![]))
        })
        .await
    }

    /// `GRANT <p> ON <db> TO <user>`: sets the user's privilege on `db` to `p`
    /// (InfluxDB replaces the previous one).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn grant_privilege(&self, user: &str, db: &str, p: Privilege) -> Result<i64> {
        self.change_privilege(user, db, |old| (old != Some(p)).then_some(p))
            .await
    }

    /// `REVOKE <p> ON <db> FROM <user>`: clears `p`'s bits from the user's privilege
    /// (REVOKE ALL leaves no privileges).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn revoke_privilege(&self, user: &str, db: &str, p: Privilege) -> Result<i64> {
        self.change_privilege(user, db, |old| {
            let had = old.unwrap_or(Privilege::None);
            let new = Privilege::from_bits(had.bits() & !p.bits());
            (old != Some(new)).then_some(new)
        })
        .await
    }

    /// Sets `user`'s privilege on the existing database `db` to what `change`
    /// makes of the present one (`None`: unchanged).
    async fn change_privilege(
        &self,
        user: &str,
        db: &str,
        change: impl Fn(Option<Privilege>) -> Option<Privilege>,
    ) -> Result<i64> {
        validate_user_name(user)?;
        validate_db_name(db)?;
        if self.kv.get(keys::database(db).as_bytes()).await?.is_none() {
            return Err(Error::DatabaseNotFound(db.to_string()));
        }
        self.update::<UserInfo, _>(&keys::user(user), |cur| {
            let mut u = cur.ok_or(Error::UserNotFound)?;
            match change(u.privileges.get(db).copied()) {
                None => Ok((Change::Keep, vec![])),
                Some(p) => {
                    u.privileges.insert(db.to_string(), p);
                    Ok((Change::Put(u), vec![]))
                }
            }
        })
        .await
    }
}
