// nav.js — how screens reach each other without importing each other.
// The bundler names every module by the hash of its content, imports
// included, so the module graph must have no cycles: a screen imports the
// shared helpers below it and reaches the other screens through nav,
// which app.js fills in at start-up:
//
//   import { nav } from "./nav.js";
//   nav.openConversation(id);
//
// Members: unlock, route, showMain, showUnlock, showEmptyPane,
// renderContacts, backButton, openConversation, addMessage, rerender,
// showSettings, showSearch, showCreateLink, showHaveLink, showInvitation,
// and from address.js showAddress, showRequestSent, connectAddress,
// isAddressLink.
export const nav = {};
