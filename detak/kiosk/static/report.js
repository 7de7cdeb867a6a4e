// The report page: Print prints the embedded PDF.
(function () {
  "use strict";
  var button = document.getElementById("print"), frame = document.getElementById("pdf");
  if (button && frame) {
    button.addEventListener("click", function () { frame.contentWindow.print(); });
  }
})();
