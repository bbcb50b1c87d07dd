// The control API as one of the daemon's services: HTTP and JSON on a Unix socket.

import { startApiServer } from '../api/api-server.js'
import type { Core } from '../core/core.js'
import type { Logger } from '../log.js'
import type { Service } from './filesystem-service.js'

export async function serveControlApi(core: Core, socketPath: string, log: Logger): Promise<Service> {
  const api = await startApiServer(core, { socketPath, log })
  return { name: 'control API', where: `listening on ${api.socketPath}`, stop: () => api.close() }
}
