import type { ApiServer } from './api.js'

/** `GET /`: the web dashboard, a single static page that uses the JSON API. */
export function dashboardRoutes (_api: ApiServer): void {}
