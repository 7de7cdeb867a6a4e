// The report page: the picture shows the page; Print prints the PDF (loaded in a hidden frame,
// as kiosk-mode Chromium may draw an embedded PDF black but prints it fine).
(function () {
  "use strict";
  var button = document.getElementById("print"), frame = document.getElementById("pdf");
  if (button && frame) {
    button.addEventListener("click", function () { frame.contentWindow.print(); });
  }
})();
