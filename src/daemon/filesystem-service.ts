// The filesystem as one of the daemon's services: prepares the mountpoint and mounts the core.

import type { Core } from '../core/core.js'
import type { FuseBinding } from '../fs/fuse-mount.js'
import { SecretFs } from '../fs/secret-fs.js'
import type { Logger } from '../log.js'
import { prepareMountpoint } from './mountpoint.js'

/** Something the daemon runs until it stops; stopped in the reverse order of starting. */
export interface Service {
  readonly name: string
  /** Where users reach it, for the start-up message ('mounted at /home/me/secrets'). */
  readonly where: string
  stop(): Promise<void>
}

export async function serveFilesystem(
  core: Core,
  mountpoint: string,
  fuse: FuseBinding,
  log: Logger,
): Promise<Service> {
  const dir = await prepareMountpoint(mountpoint, log)
  const mount = await fuse.mount(dir, new SecretFs({ core, log }), log)
  log.info(`filesystem mounted (${fuse.name})`)
  return {
    name: 'filesystem',
    where: `mounted at ${dir}`,
    stop: async () => {
      await mount.unmount()
      log.info('filesystem unmounted')
    },
  }
}
