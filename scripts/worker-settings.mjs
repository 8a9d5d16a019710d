// Which of the Worker's variables and secrets (README, Configuration) `npm start` hands it.

/** Set by `npm start` itself, with local defaults that these same environment variables override. */
export const SET_BY_START = ["ADMIN_TOKEN", "RUNTIME_PROTOCOL", "PIECE_RUNTIME_URL", "REPORT_URL", "BASE_PATH", "IDENTITY"];

/** Passed to the Worker as they are, when set in the environment (RUNTIME_SIGNERS defaults to the reference runtime's DID). */
export const PASSED_THROUGH = ["OPERATOR_PASS", "RUNTIME_TIMEOUT_MS", "SPREAD_SECONDS", "HEARTBEAT_MINUTES", "RUNTIME_SIGNERS", "ALLOWED_ORIGINS", "REGISTRATION_TOKEN", "MAX_PIECES_PER_SPACE", "MAX_PIECES", "ACCESS_TEAM_DOMAIN", "ACCESS_AUD", "ACCESS_ADMINS"];
