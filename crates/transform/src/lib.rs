//! Microsoft Graph JSON to Arrow: the chatMessage and mail message schemas and the
//! builders that turn Graph items into record batches without losing a byte of them.
