// What the interop scripts share: start `entra-emulator` and read its banner, read the sign-in
// pages' hidden inputs. No dependencies: imported by relative path from each script's package.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** Fails the interop run with `detail` unless `condition` holds. */
export function check(condition, detail) {
  if (!condition) throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
}

/**
 * Starts the emulator on a free loopback port with `args` and resolves with the process and
 * what its banner says (base URL, authority, Graph endpoint, client id and secret).
 */
export function startEmulator(binary, args) {
  const emulator = spawn(binary, ["--bind", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const banner = {};
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the emulator did not print its banner")), 30000);
    emulator.on("exit", (status) => reject(new Error(`the emulator exited with ${status}`)));
    createInterface({ input: emulator.stdout }).on("line", (line) => {
      const words = line.trim().split(/\s+/);
      if (line.startsWith("entra-emulator listening on")) banner.base = words.at(-1);
      else if (words[0] === "authority") banner.authority = words[1];
      else if (words[0] === "graph" && words[1] === "endpoint") banner.graph = words[2];
      else if (words[0] === "client" && words[1] === "id") banner.clientId = words[2];
      else if (words[0] === "client" && words[1] === "secret") banner.clientSecret = words[2];
      else if (line.startsWith("test users")) {
        clearTimeout(timer);
        resolve({ emulator, banner });
      }
    });
  });
}

/** The value of a hidden input of the emulator's sign-in and consent pages. */
export function hiddenInput(html, name) {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return match ? match[1].replaceAll("&#x2f;", "/").replaceAll("&#43;", "+").replaceAll("&#61;", "=") : undefined;
}
