// Taking text away from the page: as a downloaded file, or on the clipboard.

/** Download `text` as the file `name` of media type `type`. */
export function saveFile(name, text, type) {
  const blob = new Blob([text], { type: `${type};charset=utf-8` });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** Put `text` on the clipboard and say how it went in `status` (an element). */
export async function copyToClipboard(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
  } catch {
    status.textContent = "The browser did not allow copying: select the text instead.";
  }
}
