// training pages (being written).

export default function register(_app) {}
