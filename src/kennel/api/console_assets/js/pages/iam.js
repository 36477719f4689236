// iam pages (being written).

export default function register(_app) {}
