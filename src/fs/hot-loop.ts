// Keeps the event loop polling for a moment after each filesystem request. fuse-native hands
// every request from a libfuse thread to the JS thread through a uv_async wake-up; when the loop
// sleeps in epoll that wake-up costs more than serving the request (measured: ~245 µs against
// ~90 µs per request on a 2-core VM). Requests come in bursts (ls -l, cp -r), so after one the
// loop spins briefly, as Go's scheduler does, and then sleeps again: idle costs nothing.

export class HotLoop {
  readonly #windowMs: number
  #until = 0
  #spinning = false

  constructor(windowMs = 2) {
    this.#windowMs = windowMs
  }

  /** A request arrived: poll until `windowMs` after the last one. */
  touch(): void {
    this.#until = performance.now() + this.#windowMs
    if (this.#spinning) return
    this.#spinning = true
    setImmediate(this.#tick)
  }

  readonly #tick = (): void => {
    if (performance.now() < this.#until) setImmediate(this.#tick)
    else this.#spinning = false
  }
}
