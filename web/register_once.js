// Registers a frontend extension unless one of that name is already registered.
//
// ComfyUI loads every .js file under a pack's web folder once per URL it serves the folder under;
// a second copy of the pack (or an older ComfyUI serving it twice) would make the frontend throw
// "Extension named '…' already registered" on every page load. Names never depend on the folder
// the pack is installed in, so one check by name is enough.
import { app } from "../../scripts/app.js";

export function registerOnce(extension) {
  const registered = (app.extensions ?? []).some((existing) => existing.name === extension.name);
  if (registered) {
    console.debug(`[videocrafter-suite] ${extension.name} is already registered (the pack's web folder is served twice)`);
    return false;
  }
  app.registerExtension(extension);
  return true;
}
