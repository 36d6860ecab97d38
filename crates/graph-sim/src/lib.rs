//! A Microsoft Graph simulator over real HTTP: a seeded tenant of users, chats,
//! teams, channels and mailboxes, served with Graph's paging, delta, limits and faults.
