//! A Microsoft Graph client for archiving: OAuth2 client credentials, OData paging,
//! delta rounds, retry and throttling, and the message sources an archive reads.
